"""Error types whose messages are shown to users as one clear line."""

from __future__ import annotations

from typing import Literal


class FmnistError(Exception):
    """Base class for expected, user-facing failures (bad input, missing data, failed checks).

    The CLI prints ``str(error)`` as one line and exits with :attr:`exit_code`; anything that is
    not an ``FmnistError`` is a bug and shows a traceback with ``--debug``.
    """

    exit_code: int = 2


class ConfigError(FmnistError):
    """Invalid settings: the message names the key and where its value came from."""


class DataFormatError(FmnistError):
    """A data file is malformed (wrong magic number, truncated, mismatched pair)."""


class ChecksumError(FmnistError):
    """A file's decompressed content does not match its expected SHA-256."""


class DataNotFoundError(FmnistError):
    """No configured source holds the dataset; the message lists the sources tried in order."""


class DownloadError(FmnistError):
    """A download failed after all retries."""


class ValidationFailedError(FmnistError):
    """Data validation found violations of the configured thresholds."""

    exit_code = 1


class SnapshotNotFoundError(FmnistError):
    """The requested snapshot does not exist in the data lake."""


class ExportError(FmnistError):
    """A model could not be exported, or its exported form disagrees with the original."""

    exit_code = 1


class QuantizationError(FmnistError):
    """ONNX Runtime could not quantise a model to INT8 (the FP32 model is unaffected)."""

    exit_code = 1


InvalidImageKind = Literal["corrupt", "unsupported", "too_large", "empty", "invalid_instance"]
"""Why an input was rejected: undecodable bytes, not an accepted image format, too many pixels
(a decompression bomb), no data or no pixels, or a malformed JSON pixel instance."""


class InvalidImageError(FmnistError):
    """An uploaded image or JSON pixel instance cannot be used; :attr:`kind` says why.

    Services map ``kind`` to a status code (for example ``too_large`` to 413, the rest to 400).
    """

    def __init__(self, kind: InvalidImageKind, message: str) -> None:
        """Record the ``kind`` of failure and the one-line ``message`` shown to the user."""
        super().__init__(message)
        self.kind: InvalidImageKind = kind

    def __reduce__(self) -> tuple[type[InvalidImageError], tuple[InvalidImageKind, str]]:
        """Pickle with the kind (for process pools in the batch job)."""
        return (type(self), (self.kind, str(self)))
