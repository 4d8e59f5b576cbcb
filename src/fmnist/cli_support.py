"""What every ``fmnist`` command shares: the consoles, the one-line failure and the context.

Area CLIs (``fmnist/<area>/cli.py``) import this module, never the root :mod:`fmnist.cli`, so
the root can import them without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from fmnist.config import LoadedSettings, Settings
    from fmnist.platform.services import Services

console = Console()
err_console = Console(stderr=True)


def fail(message: str, exit_code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``exit_code``."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


@dataclass
class AppContext:
    """What every command receives: the effective settings, the services that the composition
    root builds from them (handed in by the root CLI as ``build_services``), and the debug flag.
    """

    loaded: LoadedSettings
    build_services: Callable[[Settings], Services]
    debug: bool = False
    after_drift_check: Sequence[Callable[[Services, Any], None]] = ()
    """Called by ``fmnist monitor run`` after each check with its result (None when the
    check could not run): the root CLI wires the retraining loop here."""
    _services: Services | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The effective settings."""
        return self.loaded.settings

    @property
    def services(self) -> Services:
        """The adapters chosen by the settings (built on first use)."""
        if self._services is None:
            self._services = self.build_services(self.settings)
        return self._services
