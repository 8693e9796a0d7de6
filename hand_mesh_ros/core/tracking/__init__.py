"""Finding and following hands: palm detection, landmark crops and the tracker."""
