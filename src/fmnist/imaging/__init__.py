"""Imaging: from uploaded bytes or photos to the 28x28 Fashion-MNIST-like model input.

Used by serving, training, real-world experiments and explanations alike; it depends only on
the top-level :mod:`fmnist` modules, numpy, Pillow and OpenCV.

* :mod:`~fmnist.imaging.decode`: bytes to an oriented 8-bit image (formats, EXIF, bomb check);
* :mod:`~fmnist.imaging.preprocess`: the photo pipeline (:func:`preprocess_bytes`,
  :func:`preprocess_image`) and the Fashion-MNIST pass-through;
* :mod:`~fmnist.imaging.colour_model`: background colour clusters, threshold, foreground mask;
* :mod:`~fmnist.imaging.segmentation`: GrabCut refinement of that mask;
* :mod:`~fmnist.imaging.masks`: morphology, connected components and hole filling;
* :mod:`~fmnist.imaging.framing`: crop, resize, centre and contrast like Fashion-MNIST;
* :mod:`~fmnist.imaging.model_input`: JSON pixel instances and PNG encoding of the input;
* :mod:`~fmnist.imaging.photo_augment`: photo-like variants of a photo for training;
* :mod:`~fmnist.imaging.opencv`: OpenCV, one thread per call.
"""
