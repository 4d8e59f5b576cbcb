"""The error raised when a port's chosen adapter cannot be built here."""

from __future__ import annotations

from fmnist.errors import FmnistError


class AdapterUnavailableError(FmnistError):
    """The adapter chosen for a port needs an extra that is not installed or a setting that is
    not set; the message says which (``pip install 'fmnist[gcp]'``, ``set gcp.project``)."""


def require_module(module: str, *, adapter: str, extra: str) -> None:
    """Raise :class:`AdapterUnavailableError` unless ``module`` can be imported."""
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None:
        raise AdapterUnavailableError(
            f"the {adapter} adapter needs the Python package {module!r}: "
            f"pip install 'fmnist[{extra}]'"
        )
