"""Palm detection, hand landmarks, crops and tracking."""
