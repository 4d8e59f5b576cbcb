"""What managed platforms tell the server through its environment (Cloud Run, Vertex AI).

| variable | set by | effect |
|---|---|---|
| ``PORT`` | Cloud Run (and most container platforms) | ``serving.port``, bound on all interfaces |
| ``AIP_HTTP_PORT`` | Vertex AI custom containers | ``serving.port``, bound on all interfaces |
| ``AIP_HEALTH_ROUTE`` | Vertex AI | readiness is also answered there |
| ``AIP_PREDICT_ROUTE`` | Vertex AI | ``{"instances": [...]}`` -> ``{"predictions": [...]}`` there |
| ``AIP_STORAGE_URI`` | Vertex AI (the model's URI) | the model export there is served |
| ``K_SERVICE``, ``AIP_*`` | Cloud Run, Vertex AI | JSON logs for Cloud Logging |

The export at ``AIP_STORAGE_URI`` (written by ``fmnist models export``) is copied through the
storage port of its scheme and served as ``serving.model_export``; the JSON log format applies
unless ``FMNIST_SERVING__LOG_FORMAT`` is set.

:func:`platform_overrides` reads them; ``fmnist serve`` applies them over the settings (its own
command-line options still win), so the same image runs locally, on Cloud Run and on a Vertex AI
endpoint without a wrapper script.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.errors import ConfigError

if TYPE_CHECKING:
    from fmnist.config import Settings
    from fmnist.platform.storage import Storage

ALL_INTERFACES = "0.0.0.0"  # noqa: S104  # nosec B104 - a platform's container must listen on it
VERTEX_PREFIX = "AIP_"


def platform_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``serving`` settings the platform variables in ``environ`` imply (may be empty)."""
    overrides: dict[str, Any] = {}
    port = environ.get("AIP_HTTP_PORT") or environ.get("PORT")
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            name = "AIP_HTTP_PORT" if environ.get("AIP_HTTP_PORT") else "PORT"
            raise ConfigError(f"{name}={port!r} is not a TCP port")
        overrides |= {"port": int(port), "host": ALL_INTERFACES}
    for variable, setting in (
        ("AIP_HEALTH_ROUTE", "platform_health_route"),
        ("AIP_PREDICT_ROUTE", "platform_predict_route"),
    ):
        route = environ.get(variable)
        if route:
            if not route.startswith("/"):
                raise ConfigError(f"{variable}={route!r} must be a path starting with /")
            overrides[setting] = route
    on_platform = "K_SERVICE" in environ or any(k.startswith(VERTEX_PREFIX) for k in environ)
    if on_platform and "FMNIST_SERVING__LOG_FORMAT" not in environ:
        overrides["log_format"] = "json"
    return overrides


def fetch_model_export(storage: Storage, uri: str, home: Path) -> Path:
    """Copy the model export at ``uri`` (``AIP_STORAGE_URI``) under ``home``; its local folder.

    The folder is named after the URI, so a restarted container reuses a complete copy: the
    copy is made in a temporary sibling and renamed when whole.
    """
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    final = home / "serving" / "exports" / digest
    if (final / "registry.json").is_file():
        return final
    staging = final.with_name(f".{digest}-partial")
    if staging.exists():  # left by a container killed while copying
        shutil.rmtree(staging)
    storage.download("", staging)
    if not (staging / "registry.json").is_file():
        raise ConfigError(
            f"AIP_STORAGE_URI={uri} holds no model export (registry.json): write one with "
            "`fmnist models export --to <folder>` and upload the folder"
        )
    staging.rename(final)
    return final


def apply_platform(
    settings: Settings, environ: Mapping[str, str], storage_for: Callable[[str], Storage]
) -> dict[str, Any]:
    """The ``serving`` overrides for ``environ``, the export of ``AIP_STORAGE_URI`` included
    (copied now, through ``storage_for(uri)``: the storage port of the URL's scheme)."""
    overrides = platform_overrides(environ)
    uri = environ.get("AIP_STORAGE_URI")
    if uri:
        overrides["model_export"] = fetch_model_export(storage_for(uri), uri, settings.home)
    return overrides
