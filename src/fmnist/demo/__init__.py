"""Demonstrations that run the real system end to end (``fmnist demo``)."""
