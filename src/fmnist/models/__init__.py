"""Model architectures, addressed by name through :func:`build_model`."""

from fmnist.models.zoo import ARCHITECTURES, build_model, count_parameters

__all__ = ["ARCHITECTURES", "build_model", "count_parameters"]
