"""Run ``fmnist`` with the training stack unimportable: ``python without_training_stack.py ARGS``.

The serving path must run on the ``serve`` extra alone (the API image has no torch, MLflow,
scikit-learn, SHAP, SciPy, pandas or pyarrow). The serving-only virtual environment proves it
for real (``make test-serve-only``); this script gives the main suite the same guarantee cheaply:
any import of a blocked package raises ``ModuleNotFoundError`` naming it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import runpy
import sys
from collections.abc import Sequence
from types import ModuleType

BLOCKED = frozenset(
    {
        "torch",
        "mlflow",
        "sklearn",
        "shap",
        "scipy",
        "pandas",
        "pyarrow",
        "duckdb",
        "evidently",
        "matplotlib",
        "optuna",
        "kfp",
        "apache_beam",
        "captum",
        "lime",
        "skimage",
        "sqlalchemy",
    }
)
"""Top-level packages of the training, analytics and pipeline extras."""


class TrainingStackBlocker(importlib.abc.MetaPathFinder):
    """A meta path finder that refuses the packages in :data:`BLOCKED`."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Refuse a blocked package; leave everything else to the normal finders."""
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None


def main() -> None:
    """Install the blocker, then run ``fmnist`` with this script's arguments."""
    sys.meta_path.insert(0, TrainingStackBlocker())
    sys.argv = ["fmnist", *sys.argv[1:]]
    runpy.run_module("fmnist", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
