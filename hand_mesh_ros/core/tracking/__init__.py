"""Tracking: palm detection, crops, landmark decoding and the hand tracker."""
