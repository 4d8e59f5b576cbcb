"""fmnist: a production-grade Fashion-MNIST classification system.

The package is organised by lifecycle step (``data``, ``training``, ``evaluation``, ...); the
CLI (:mod:`fmnist.cli`) and the services are thin layers over these modules.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fmnist")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST label names, indexed by class id."""

NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28

__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "NUM_CLASSES", "__version__"]
