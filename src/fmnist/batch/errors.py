"""The batch job's user-facing errors (one line each, exit code 2)."""

from __future__ import annotations

from fmnist.errors import FmnistError


class BatchInputError(FmnistError):
    """The batch input cannot be used; the message names the file (and the row or entry)."""


class BatchJobError(FmnistError):
    """The job cannot run as asked (another job's parts or output in the way, bad model)."""
