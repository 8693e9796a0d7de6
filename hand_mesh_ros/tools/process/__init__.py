"""Processing videos, image folders and bags into results."""
