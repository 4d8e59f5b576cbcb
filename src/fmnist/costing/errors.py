"""The cost report's user-facing error."""

from __future__ import annotations

from fmnist.errors import FmnistError


class CostInputError(FmnistError):
    """A cost input (price list, result file) is missing or invalid; the message names it."""
