"""``fmnist serve``: run the online inference service under uvicorn.

One worker (the default) runs the app in this process. With ``--workers N`` (N > 1) uvicorn's
multiprocess supervisor runs N worker processes, which build the app from the settings passed
in :data:`~fmnist.serving.app.SETTINGS_ENV`, and each listens on a socket of its own
(:class:`WorkerListener`, ``SO_REUSEPORT``): the kernel spreads new connections over the
workers. One socket shared by every worker (uvicorn's way) left one worker with every
connection of a burst, since an asyncio loop accepts all the connections that are waiting when
it wakes up: two workers under 32 keep-alive connections served at the rate of one.

Sockets are created with ``IPPROTO_TCP`` so that asyncio applies ``TCP_NODELAY`` to accepted
connections: uvicorn's own multi-worker socket (protocol 0) does not get it, and Nagle's
algorithm meeting delayed ACKs then adds about 44 ms to every keep-alive request.
"""

from __future__ import annotations

import logging.config
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from fmnist.config import Settings
from fmnist.errors import ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_config(level: str, log_format: str = "text", project: str | None = None) -> dict[str, Any]:
    """Logging for uvicorn and fmnist in every process: one line per record on stderr (plain
    text, or a Cloud Logging JSON object with ``log_format="json"``)."""
    level = level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    plain: dict[str, Any] = {"format": LOG_FORMAT}
    if log_format == "json":
        plain = {"()": "fmnist.serving.cloud_logging.CloudLoggingFormatter", "project": project}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": plain},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "fmnist": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


def _tcp_socket(family: int, cls: type[socket.socket] = socket.socket) -> socket.socket:
    """A TCP socket whose accepted connections get ``TCP_NODELAY`` (see the module doc)."""
    sock = cls(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose accepted connections get ``TCP_NODELAY`` (see module doc)."""
    sock = _tcp_socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def worker_socket(family: int, host: str, port: int) -> socket.socket:
    """A worker's own socket on ``host:port``, beside its siblings' (``SO_REUSEPORT``)."""
    sock = _tcp_socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")
"""Linux 5.14+: 1 moves the connections queued at a closing ``SO_REUSEPORT`` socket to a
sibling."""


def requests_migrate_between_workers(sysctl: Path = MIGRATE_REQ) -> bool:
    """Whether the kernel hands the connections queued at a stopping worker to another one
    (``True`` where that cannot be read: nothing to advise)."""
    try:
        return sysctl.read_text().strip() != "0"
    except OSError:
        return True


class WorkerListener(socket.socket):
    """The address the workers of ``fmnist serve --workers N`` listen on.

    In the supervisor it is bound with ``SO_REUSEPORT`` but never listens, so it receives no
    connection: it holds the port (a free port when ``port`` is 0) and proves the address
    usable before any worker starts. Sent to a worker process (uvicorn's supervisor pickles the
    sockets it passes), it arrives as a new socket of that worker bound to the same address
    (:func:`worker_socket`), which the worker's server listens on. A worker that stops
    resets the connections still waiting in its own queue (the price of ``SO_REUSEPORT``),
    unless ``net.ipv4.tcp_migrate_req`` is 1 (:func:`requests_migrate_between_workers`).
    """

    @classmethod
    def bind_free(cls, host: str, port: int) -> WorkerListener:
        """The listener of ``host:port``; ``OSError`` when something already listens there."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with listening_socket(host, port) as probe:  # no SO_REUSEPORT: a listener refuses it
            port = probe.getsockname()[1]
        sock = _tcp_socket(family, cls)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        assert isinstance(sock, WorkerListener)
        return sock

    def __reduce__(self) -> tuple[Any, tuple[int, str, int]]:
        """Pickled for a worker: a new socket bound to the same address."""
        host, port = self.getsockname()[:2]
        return (worker_socket, (int(self.family), host, port))


LOG_LEVELS = ("debug", "info", "warning", "error")


def _with_overrides(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with the command-line values (None: unchanged), validated."""
    from pydantic import ValidationError

    from fmnist.config import ServingSettings

    updates = {k: v for k, v in changes.items() if v is not None}
    try:
        serving = ServingSettings.model_validate({**settings.serving.model_dump(), **updates})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid option: {problems}") from None
    return settings.model_copy(update={"serving": serving})


def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface (default serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default serving.port).")] = None,
    reload_interval: Annotated[
        float | None,
        typer.Option(
            "--reload-interval", help="Seconds between registry checks for a new champion; 0 off."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes (default serving.workers, 1); each listens on its own "
            "socket (SO_REUSEPORT, TCP_NODELAY), so the kernel spreads connections over them."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the champion model over HTTP: API, docs, metrics and the web UI."""
    import uvicorn

    from fmnist.config import settings_json_with_secrets
    from fmnist.serving.app import SETTINGS_ENV, create_app
    from fmnist.serving.model_store import ModelStore
    from fmnist.serving.platform_env import apply_platform

    if log_level.lower() not in LOG_LEVELS:
        raise ConfigError(
            f"invalid --log-level {log_level!r}: choose one of {', '.join(LOG_LEVELS)}"
        )
    configured = ctx.obj.settings
    # Cloud Run / Vertex AI variables first, the command line's options over them.
    storage_for = ctx.obj.build_services(configured).open_storage
    platform = apply_platform(configured, os.environ, storage_for)
    settings = _with_overrides(
        _with_overrides(configured, **platform),
        **{
            "host": host,
            "port": port,
            "reload_interval_s": reload_interval,
            "workers": workers,
        },
    )
    serving = settings.serving
    logs = log_config(log_level, serving.log_format, settings.gcp.project)
    logging.config.dictConfig(logs)
    services = ctx.obj.build_services(settings)
    store = ModelStore(settings, services.registries)
    model = store.load_default()  # fails with one line when nothing is registered

    shown_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(serving.host, serving.host)  # noqa: S104  # nosec B104
    shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
    base = f"http://{shown_host}:{serving.port}"
    banner = (
        f"serving {model.name} version {model.version} ({serving.model_ref})",
        f"web UI:   {base}/",
        f"API docs: {base}/docs",
    )
    for line in banner:  # JSON logs: every line of output is a log entry
        if serving.log_format == "json":
            logging.getLogger("fmnist.serving").info(line)
        else:
            typer.echo(line)

    common: dict[str, Any] = {
        "loop": "asyncio",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_config": logs,
        "timeout_graceful_shutdown": 10,
    }
    if serving.workers == 1:
        config = uvicorn.Config(
            create_app(services, store), host=serving.host, port=serving.port, **common
        )
        uvicorn.Server(config).run()
        return

    from uvicorn.supervisors import Multiprocess

    from fmnist.serving.metrics import multiprocess_directory

    os.environ[SETTINGS_ENV] = settings_json_with_secrets(settings)
    store.close()  # each worker loads its own copy (from the local model cache)
    sock = WorkerListener.bind_free(serving.host, serving.port)
    if not requests_migrate_between_workers():
        logging.getLogger("fmnist.serving").info(
            "net.ipv4.tcp_migrate_req is 0: connections still queued at a worker that stops "
            "are reset rather than handed to another worker (set it to 1 to migrate them)"
        )
    config = uvicorn.Config(
        "fmnist.asgi:create_app_from_env",
        factory=True,
        host=serving.host,
        port=serving.port,
        workers=serving.workers,
        **common,
    )
    try:
        with multiprocess_directory():  # one /metrics over every worker (serving.metrics)
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
