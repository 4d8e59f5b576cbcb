"""Fuzzing of the HTTP API from its own OpenAPI document with schemathesis.

Shared by ``tests/integration/serving/test_fuzz_openapi.py`` (a short run) and
``benchmarks/bench_fuzz.py`` (>= 10,000 cases). Every operation of the running server's
``/openapi.json`` is fuzzed with valid (``positive``) and invalid (``negative``) requests as
several identities (no credential, the admin token, a key with the ``predict`` scope only, a
key that is not valid); each response is checked for

* no 5xx (``not_a_server_error``);
* a documented status code, content type and body (``status_code_conformance``,
  ``content_type_conformance``, ``response_schema_conformance``);
* invalid requests rejected with a 4xx (``negative_data_rejection``);
* the answer of the security layer: 401 without a needed credential or with an invalid one,
  403 with a key that lacks the route's scope (:func:`expected_auth_status`);
* a problem details body (``application/problem+json``) on every 4xx.

Failures are collected, not raised, so one run reports every kind of failure it met.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import hypothesis
import hypothesis.errors
import requests  # type: ignore[import-untyped]  # no stubs in the lock
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from fmnist.serving.security import route_scope

Case = schemathesis.Case[Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Identity = Literal["anonymous", "admin", "predict-key", "invalid-key"]
IDENTITIES: tuple[Identity, ...] = ("anonymous", "admin", "predict-key", "invalid-key")
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
INVALID_KEY = "fmk_000000000000_not-a-valid-key"
PROBLEM_JSON = "application/problem+json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SCHEMA_CHECKS = frozenset(
    {"status_code_conformance", "content_type_conformance", "response_schema_conformance"}
)
"""Checks whose failures count as schema violations (the others: server errors, rejection)."""
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "429"]
"""What rejects an invalid request: schemathesis' list, and 413 (too many instances)."""
MAX_EXAMPLES_KEPT = 3


@dataclass(frozen=True)
class Credentials:
    """The secrets of the identities: the admin token and a key with the ``predict`` scope."""

    admin_token: str
    predict_key: str

    def headers(self, identity: Identity) -> dict[str, str]:
        """The request headers that carry ``identity``'s credential (none when anonymous)."""
        token = {
            "anonymous": None,
            "admin": self.admin_token,
            "predict-key": self.predict_key,
            "invalid-key": INVALID_KEY,
        }[identity]
        return {} if token is None else {"Authorization": f"Bearer {token}"}


def expected_auth_status(method: str, path: str, identity: Identity) -> int | None:
    """The status the security layer must answer for ``identity`` on a loopback server with the
    default ``security.auth: auto`` (admin routes need a key, the others are open), or None
    when the request passes it."""
    if identity == "invalid-key":
        return 401  # on every route: nothing tells a malformed, unknown or revoked key apart
    scope = route_scope(method, path, metrics_need_key=False)
    if scope == "admin":
        return {"anonymous": 401, "predict-key": 403, "admin": None}[identity]
    if scope is not None and identity == "predict-key" and scope != "predict":
        return 403
    return None


def sent_identity(
    response: schemathesis.Response, identity: Identity, credentials: Credentials
) -> Identity:
    """The identity the request really carried: the negative mode may drop or break the
    credential of an operation that declares a security scheme."""
    sent = response.request.headers.get("Authorization")
    if sent is None:
        return "anonymous"
    return identity if sent == credentials.headers(identity).get("Authorization") else "invalid-key"


@dataclass
class FailureKind:
    """One kind of failure (check and title) on one operation, with a few reproducers."""

    check: str
    title: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        """Count one occurrence, keeping the first few reproducers."""
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES_KEPT:
            self.examples.append(example)


@dataclass
class RunStats:
    """What one (operation, identity, generation mode) run sent and got back."""

    operation: str
    identity: Identity
    mode: str
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, FailureKind] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, check: str, title: str, example: str) -> None:
        """Record one failure of ``check``."""
        kind = self.failures.setdefault(f"{check}: {title}", FailureKind(check, title))
        kind.add(example)

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def schema_violations(self) -> int:
        """Responses that broke the documented status codes, content types or bodies."""
        return sum(k.count for k in self.failures.values() if k.check in SCHEMA_CHECKS)

    @property
    def failure_count(self) -> int:
        """Failed checks of every kind."""
        return sum(k.count for k in self.failures.values())


def _failure_check(failure: Failure) -> str:
    return failure.checks[0] if failure.checks else type(failure).__name__


def _reproducer(case: Case, response: schemathesis.Response, detail: str) -> str:
    body = response.text[:300] if response.text else ""
    return f"{detail[:500]}\n{case.as_curl_command()} -> {response.status_code} {body!r}"


def _is_problem(response: schemathesis.Response) -> bool:
    kind = response.headers.get("content-type", [""])[0]
    if not kind.startswith(PROBLEM_JSON):
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == response.status_code


def check_response(
    stats: RunStats,
    case: Case,
    response: schemathesis.Response,
    headers: Mapping[str, str],
    credentials: Credentials,
) -> None:
    """Run the checks on one response, recording each failure in ``stats``."""
    try:
        case.validate_response(response, checks=CHECKS, headers=dict(headers))
    except FailureGroup as group:
        for failure in group.exceptions:
            example = _reproducer(case, response, failure.message)
            stats.fail(_failure_check(failure), failure.title, example)
    status = response.status_code
    identity = sent_identity(response, stats.identity, credentials)
    expected = expected_auth_status(case.method.upper(), case.path, identity)
    if expected is not None and status != expected:
        stats.fail(
            "auth",
            f"expected {expected} for {identity}",
            _reproducer(case, response, f"got {status}"),
        )
    if 400 <= status < 500 and not _is_problem(response):
        stats.fail("problem_details", "4xx without a problem body", _reproducer(case, response, ""))


def invalid_on_the_wire(case: Case) -> bool:
    """False for a negative multipart case with an empty array field: multipart sends no part
    for an empty array, so the request may be valid as sent (nothing left to reject)."""
    return not (
        case.media_type == "multipart/form-data"
        and isinstance(case.body, dict)
        and any(value == [] for value in case.body.values())
    )


def fuzz_operation(
    operation: Operation,
    *,
    base_url: str,
    identity: Identity,
    credentials: Credentials,
    mode: schemathesis.GenerationMode,
    max_examples: int,
    session: requests.Session,
    seed: int = 0,
) -> RunStats:
    """Send up to ``max_examples`` generated requests for ``operation`` and check each answer.

    Hypothesis is seeded from ``seed``, the operation, the identity and the mode: the same
    cases on every run. Fewer cases are sent when the operation has fewer distinct inputs
    (none in the negative mode when it has no parameters to break).
    """
    stats = RunStats(operation.label, identity, mode.value)
    headers = credentials.headers(identity)
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is schemathesis.GenerationMode.NEGATIVE:
        strategy = strategy.filter(invalid_on_the_wire)

    @hypothesis.settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.given(case=strategy)
    def run(case: Case) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        stats.cases += 1
        stats.statuses[response.status_code] += 1
        check_response(stats, case, response, headers, credentials)

    key = f"{seed}:{operation.label}:{identity}:{mode.value}"
    started = time.perf_counter()
    try:
        hypothesis.seed(zlib.crc32(key.encode()))(run)()
    except hypothesis.errors.Unsatisfiable:
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise
        # nothing to generate: the operation has no parameter or body to break
    stats.seconds = time.perf_counter() - started
    return stats


def load_operations(base_url: str) -> list[Operation]:
    """Every operation of the server's ``/openapi.json`` (an invalid one fails loudly)."""
    config = schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config, timeout=30)
    operations = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()
        operations.append(result.ok())
    return operations


Budget = Callable[[Operation, Identity, schemathesis.GenerationMode], int]


def primary_identity(operation: Operation) -> Identity:
    """Who normally calls ``operation`` on a loopback server: an admin for the admin routes,
    an anonymous client for the others."""
    scope = route_scope(operation.method.upper(), operation.path, metrics_need_key=False)
    return "admin" if scope == "admin" else "anonymous"


def shares(cases: int) -> dict[str, int]:
    """Cases per generation mode of :func:`plan` for each kind of caller."""
    return {
        "usual_caller": cases,
        "admin_on_other_routes": cases // 4,
        "predict_key_and_invalid_key": max(2, cases // 20),
    }


def plan(cases: int) -> Budget:
    """``cases`` per mode for the operation's usual caller (:func:`primary_identity`), a
    quarter of it as an admin on the other routes (versions that failed their gates), a
    twentieth (at least 2) with the ``predict`` key and with an invalid key."""
    sizes = shares(cases)

    def budget(
        operation: Operation,
        identity: Identity,
        mode: schemathesis.GenerationMode,
    ) -> int:
        if identity == primary_identity(operation):
            return sizes["usual_caller"]
        if identity == "admin":
            return sizes["admin_on_other_routes"]
        return sizes["predict_key_and_invalid_key"]

    return budget


def fuzz_all(
    base_url: str,
    credentials: Credentials,
    budget: Budget,
    *,
    seed: int = 0,
    identities: Iterable[Identity] = IDENTITIES,
    progress: Callable[[RunStats], None] | None = None,
) -> list[RunStats]:
    """Fuzz every operation as every identity in both generation modes; ``budget`` gives the
    number of cases of each run (0 skips it)."""
    runs = []
    with requests.Session() as session:
        session.trust_env = False
        for operation in load_operations(base_url):
            for identity in identities:
                for mode in MODES:
                    n = budget(operation, identity, mode)
                    if n <= 0:
                        continue
                    stats = fuzz_operation(
                        operation,
                        base_url=base_url,
                        identity=identity,
                        credentials=credentials,
                        mode=mode,
                        max_examples=n,
                        session=session,
                        seed=seed,
                    )
                    runs.append(stats)
                    if progress is not None:
                        progress(stats)
    return runs


def summary(runs: Iterable[RunStats]) -> dict[str, Any]:
    """Totals of ``runs`` per operation and overall (JSON-ready)."""
    per_operation: dict[str, dict[str, Any]] = {}
    for r in runs:
        entry = per_operation.setdefault(
            r.operation,
            {
                "cases": 0,
                "statuses": Counter[int](),
                "server_errors": 0,
                "schema_violations": 0,
                "failures": 0,
                "seconds": 0.0,
            },
        )
        entry["cases"] += r.cases
        entry["statuses"].update(r.statuses)
        entry["server_errors"] += r.server_errors
        entry["schema_violations"] += r.schema_violations
        entry["failures"] += r.failure_count
        entry["seconds"] += r.seconds
    for entry in per_operation.values():
        entry["statuses"] = {str(s): n for s, n in sorted(entry["statuses"].items())}
        entry["seconds"] = round(entry["seconds"], 2)
    return {
        "operations": per_operation,
        "total_cases": sum(e["cases"] for e in per_operation.values()),
        "server_errors": sum(e["server_errors"] for e in per_operation.values()),
        "schema_violations": sum(e["schema_violations"] for e in per_operation.values()),
        "failures": sum(e["failures"] for e in per_operation.values()),
    }
