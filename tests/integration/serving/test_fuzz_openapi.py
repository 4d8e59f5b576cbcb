"""Fuzzing of every operation of the served OpenAPI document with schemathesis (a CI-sized run).

The real app runs on loopback on a copy of the session's home (the fuzzer changes the rollout
and writes predictions); the schema is read from its ``/openapi.json``. Every operation is
fuzzed with valid and invalid requests as an anonymous client, with the admin token, with a
key that has only the ``predict`` scope and with an invalid key (see :mod:`api_fuzzing` for the
checks). Cases are seeded, so every run sends the same requests. The >= 10,000-case run is
``benchmarks/bench_fuzz.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from api_fuzzing import Credentials, RunStats, fuzz_all, load_operations, plan, summary
from app_server import running
from fmnist.security.keys import KeyStore, key_store_path

from .conftest import ADMIN_TOKEN, Trained, serving_settings

pytestmark = pytest.mark.network

CASES = 50
"""Cases per operation and generation mode for the operation's usual caller (about 1,200 in all,
under a minute on 2 cores)."""
SEED = 0


@dataclass(frozen=True)
class Fuzzed:
    """The fuzzed server's operations and what each run sent and got back."""

    operations: list[str]
    runs: list[RunStats]

    def statuses(self, operation: str, identity: str) -> set[int]:
        """Every status ``identity`` got from ``operation``."""
        return {
            status
            for r in self.runs
            if r.operation == operation and r.identity == identity
            for status in r.statuses
        }


@pytest.fixture(scope="module")
def fuzzed(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """Fuzz a server on a copy of the trained home (registry and data snapshot)."""
    home = tmp_path_factory.mktemp("fuzz-home")
    for folder in ("mlflow", "lake"):
        shutil.copytree(trained.settings.home / folder, home / folder)
    settings = serving_settings(trained.settings.model_copy(update={"home": home}))
    predict_key, _ = KeyStore(key_store_path(home, settings.security.keys_path)).create(
        "fuzz", ["predict"]
    )
    with running(settings) as url:
        operations = [op.label for op in load_operations(url)]
        runs = fuzz_all(url, Credentials(ADMIN_TOKEN, predict_key), plan(CASES), seed=SEED)
    yield Fuzzed(operations, runs)


def _report(runs: list[RunStats]) -> str:
    lines = []
    for r in runs:
        for kind in r.failures.values():
            lines.append(f"{r.operation} as {r.identity} ({r.mode}): {kind.count}x {kind.check}")
            lines.append(f"  {kind.title}")
            lines += [f"  e.g. {example[-1500:]}" for example in kind.examples]
    return "\n".join(lines)


def test_no_server_errors_and_every_answer_as_documented(fuzzed: Fuzzed) -> None:
    """No 5xx; documented statuses, media types and bodies; invalid input refused with a 4xx
    problem; the security layer's 401/403 where the identity calls for them."""
    totals = summary(fuzzed.runs)
    assert totals["total_cases"] >= 1000, totals
    failed = [r for r in fuzzed.runs if r.failures]
    assert not failed, _report(failed)
    assert totals["server_errors"] == 0


def test_every_operation_was_fuzzed(fuzzed: Fuzzed) -> None:
    """Each operation of the document got requests from every identity."""
    assert len(fuzzed.operations) >= 15
    for operation in fuzzed.operations:
        cases = {r.identity: 0 for r in fuzzed.runs}
        for r in fuzzed.runs:
            if r.operation == operation:
                cases[r.identity] += r.cases
        assert all(n > 0 for n in cases.values()), (operation, cases)


def test_admin_routes_were_exercised_with_and_without_credentials(fuzzed: Fuzzed) -> None:
    """The admin token got through to the routes (2xx); no key was 401, the predict key 403."""
    admin_operations = [op for op in fuzzed.operations if " /v1/admin/" in op]
    assert len(admin_operations) == 3
    for operation in admin_operations:
        assert any(200 <= s < 300 for s in fuzzed.statuses(operation, "admin")), operation
        assert fuzzed.statuses(operation, "anonymous") == {401}, operation
        assert fuzzed.statuses(operation, "predict-key") <= {401, 403}, operation
        assert 403 in fuzzed.statuses(operation, "predict-key"), operation
        assert fuzzed.statuses(operation, "invalid-key") == {401}, operation


def test_prediction_routes_answered_valid_requests(fuzzed: Fuzzed) -> None:
    """Generated valid images and pixel arrays were classified and explained (not only refused)."""
    for operation in ("POST /v1/predict", "POST /v1/predict/batch", "POST /v1/explain"):
        assert 200 in fuzzed.statuses(operation, "anonymous"), operation
