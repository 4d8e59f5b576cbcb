"""Model architectures, addressed by name through :func:`build_model`, and ensembles."""

from fmnist.models.cnn import MLP, FashionCNN
from fmnist.models.ensemble import (
    SoftVotingEnsemble,
    build_ensemble,
    mixture_weights,
    weights_from_validation,
)
from fmnist.models.resnet import PreActResNet
from fmnist.models.vit import VisionTransformer
from fmnist.models.zoo import ARCHITECTURES, build_model, count_parameters

__all__ = [
    "ARCHITECTURES",
    "MLP",
    "FashionCNN",
    "PreActResNet",
    "SoftVotingEnsemble",
    "VisionTransformer",
    "build_ensemble",
    "build_model",
    "count_parameters",
    "mixture_weights",
    "weights_from_validation",
]
