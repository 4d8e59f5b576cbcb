"""Shared fixtures: per-test isolation of settings and paths, real Fashion-MNIST, MLflow store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from data_paths import IN_CI, missing
from fmnist.data.sources import DATASET_FILES, DirectorySource, RawDataset, load_from
from helpers import closed_port, subset

# Read before any test isolates the environment: the folder a developer points the suite at.
_INHERITED_DATA_DIR = os.environ.get("FMNIST_DATA_DIR")
REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR_CANDIDATES: tuple[Path, ...] = tuple(
    Path(p)
    for p in (
        _INHERITED_DATA_DIR,
        "/usr/share/datasets/fashion-mnist",
        REPO_ROOT.parent / "shared/data/fashion-mnist",
    )
    if p
)
GZ_NAMES: tuple[str, ...] = tuple(f"{f.name}.gz" for f in DATASET_FILES)


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every test its own home and cache and no inherited FMNIST_* settings."""
    for name in list(os.environ):
        if name.startswith("FMNIST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Relative defaults (for example home=data) must never land in the repository.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def fmnist_data_dir() -> Path:
    """The first candidate folder that holds the four gzipped Fashion-MNIST files."""
    for candidate in DATA_DIR_CANDIDATES:
        if candidate.is_dir() and all((candidate / name).is_file() for name in GZ_NAMES):
            return candidate
    missing(
        "Fashion-MNIST not found in any of: "
        + ", ".join(str(c) for c in DATA_DIR_CANDIDATES)
        + " (run scripts/install-dataset.sh or set FMNIST_DATA_DIR)"
    )
    raise AssertionError("unreachable")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under ``CI=true`` no test may skip: a skip there is a missing prerequisite, so it fails.

    (``pytest.importorskip`` and explicit ``pytest.skip`` calls included.)
    """
    report = yield
    return _fail_skip_in_ci(report)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """The same for a module skipped as a whole (``allow_module_level``, ``importorskip``)."""
    report = yield
    return _fail_skip_in_ci(report)


def _fail_skip_in_ci(report):  # type: ignore[no-untyped-def]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (a missing prerequisite fails there): {reason}"
    return report


@pytest.fixture(scope="session")
def raw_dataset(fmnist_data_dir: Path) -> RawDataset:
    """The verified real dataset, loaded once per session."""
    source = DirectorySource("test data", fmnist_data_dir)
    paths = {f.name: source.locate(f) for f in DATASET_FILES}
    assert all(paths.values()), paths
    return load_from({k: v for k, v in paths.items() if v is not None}, source.describe())


@pytest.fixture(scope="session")
def raw_subset(raw_dataset: RawDataset) -> RawDataset:
    """The first 6,000 train and 1,000 test images, with checksums of their own.

    Own checksums give the subset its own content hash, hence its own snapshot id.
    """
    return subset(raw_dataset, 6_000, 1_000)


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store, made once per session.

    Creating a store runs MLflow's migrations (several seconds); tests that need a fresh store
    copy this file with :mod:`tracking_home`'s functions instead.
    """
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, str]]:
    """Configure a source chain that never reaches the internet.

    Debian's folder points nowhere, downloads go to a closed local port without retries, and
    ``data_dir`` (when given) becomes FMNIST_DATA_DIR. Extra keyword arguments are set as
    FMNIST_<KEY> variables. Returns the variables set.
    """

    def configure(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
        env = {
            "FMNIST_DEBIAN_DATA_DIR": str(tmp_path / "no-debian-dataset"),
            "FMNIST_DATA__MIRRORS": f'["http://127.0.0.1:{closed_port()}/"]',
            "FMNIST_DATA__DOWNLOAD_RETRIES": "0",
        }
        if data_dir is not None:
            env["FMNIST_DATA_DIR"] = str(data_dir)
        env |= {f"FMNIST_{key.upper()}": value for key, value in extra.items()}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return configure
