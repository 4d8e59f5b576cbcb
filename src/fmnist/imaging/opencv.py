"""OpenCV as the imaging package uses it: ``from fmnist.imaging.opencv import cv2``.

Importing this module limits OpenCV to one thread per call. The images are small (a few hundred
pixels a side) and requests and batch workers already process images in parallel, so OpenCV's
own thread pool would only oversubscribe the cores.
"""

from __future__ import annotations

import cv2

cv2.setNumThreads(1)

__all__ = ["cv2"]
