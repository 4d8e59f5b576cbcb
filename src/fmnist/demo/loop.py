"""The closed loop end to end: clean traffic, drift, alert, retrain, gates, shadow, canary,
promotion (or rollback of a bad candidate), with a load probe across the promotion.

:func:`run_loop` is what ``fmnist demo loop`` runs and what the system test asserts on. It
works in its own home folder with a small model (the ``tiny`` preset) so that it takes a few
minutes on a laptop CPU:

1. **Setup**: snapshot, train and register a champion; start ``fmnist serve`` and a webhook
   receiver for the alerts.
2. **Control**: clean traffic (validation images) with feedback, one monitor check: no drift,
   no alert, no retrain, the champion still serves.
3. **Drift**: other garments turned by 25 degrees and darker, with feedback; the monitor check
   detects drift, the webhook receives the alert, the loop retrains on the window's feedback,
   the candidate faces its gates and starts in shadow.
4. **Rollout**: more drifted traffic with feedback between monitor checks; the controller
   moves the candidate to a canary, along its steps, and promotes it while a load probe
   sends requests (none may fail); the new version is then served. In the ``bad`` variant the
   feedback of the retrain window comes from a broken labeller (every label shifted by one
   class): the candidate passes its gates on those labels, and the correct labels of live
   traffic roll it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml

from fmnist.audit import AuditLog, audit_path
from fmnist.config import Settings, load_settings
from fmnist.demo.harness import (
    LoadProbe,
    TrafficReport,
    WebhookReceiver,
    drifted,
    free_port,
    replay,
    serving,
)

if TYPE_CHECKING:
    import httpx

    from fmnist.platform.services import Services
    from fmnist.retraining.loop import LoopStep

Variant = Literal["good", "bad"]
ADMIN_TOKEN = "demo-loop-admin-token"  # noqa: S105 - a loopback demo's own token


@dataclass
class LoopResult:
    """What happened, for the printout and the assertions."""

    variant: Variant
    champion_before: int
    served_after: int
    control: dict[str, Any] = field(default_factory=dict)
    drift_detected: bool = False
    alerts: list[dict[str, Any]] = field(default_factory=list)
    retrain: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    load_probe: TrafficReport | None = None
    audit_actions: list[str] = field(default_factory=list)
    outcome: str = ""


def scenario_settings(home: Path, webhook_url: str) -> dict[str, Any]:
    """The scenario's configuration: a small model, small windows, the loop switched on."""
    return {
        "home": str(home),
        "gates": {
            "min_accuracy": 0.75,
            "min_class_recall": 0.3,
            "max_ece": 0.1,
            "non_inferiority_margin": 0.03,
        },
        "evaluation": {"bootstrap_resamples": 100},
        "serving": {"admin_token": ADMIN_TOKEN, "reload_interval_s": 0.5, "access_log": False},
        "monitoring": {"fsync": "off", "journal_move_interval_s": 0.2},
        "drift": {"window": 300, "min_window": 50, "write_reports": False},
        "alerts": {"webhook_url": webhook_url, "webhook_retries": 1},
        "retraining": {
            "auto": True,
            "preset": "tiny",
            "cooldown_s": 3600,
            "min_new_feedback": 100_000,
            "min_feedback": 100,
            "holdout_fraction": 0.3,
            "feedback_weight": 5,
        },
        "rollout": {
            "canary_steps": [0.25, 0.5, 1.0],
            "canary_min_requests": 40,
            "shadow_min_requests": 100,
        },
    }


def _served_version(http: httpx.Client) -> int:
    return int(http.get("/v1/models").json()["served"]["version"])


def _wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def monitor_check(services: Services) -> tuple[bool, LoopStep | None]:
    """What ``fmnist monitor run`` does once: check, alert, then the closed loop."""
    from fmnist.monitoring.journal import replay_journals
    from fmnist.monitoring.monitor import check_traffic, raise_alerts
    from fmnist.retraining.loop import after_drift_check

    replay_journals(services.prediction_log)  # what the server acknowledged, up to now
    result, _, _ = check_traffic(services)
    raise_alerts(services.settings, result)
    return result.drift_detected, after_drift_check(services, result)


def run_loop(
    home: Path,
    build_services: Callable[[Settings], Services],
    *,
    variant: Variant = "good",
    say: Callable[[str], None] = print,
    per_round: int = 200,
    max_rounds: int = 8,
) -> LoopResult:
    """Run the scenario in ``home`` (see the module docstring)."""
    from fmnist.data.snapshot import load_snapshot
    from fmnist.platform.registry import CHAMPION

    home.mkdir(parents=True, exist_ok=True)
    with WebhookReceiver().running() as webhook:
        config = home / "loop.yaml"
        config.write_text(yaml.safe_dump(scenario_settings(home, webhook.url)))
        settings = load_settings(config).settings
        services = build_services(settings)
        say("setup: snapshot, train and register the champion (tiny preset)")
        services.orchestrator.run("training", {"preset": "tiny"})
        champion = services.registry().get(CHAMPION)
        images, labels = load_snapshot(services.storage, champion.tags["snapshot_id"]).split("val")
        rng = np.random.default_rng(0)
        order = rng.permutation(len(labels))
        images, labels = images[order], labels[order]
        cursor = 0

        def take(n: int) -> tuple[np.ndarray, np.ndarray]:
            nonlocal cursor
            part = slice(cursor, cursor + n)
            cursor += n
            return images[part], labels[part]

        result = LoopResult(variant, champion.version, champion.version)
        port = free_port()
        with serving(config, port, home / "server.log") as http:
            say(f"serving version {_served_version(http)} on http://127.0.0.1:{port}")
            clean = take(300)
            report = replay(http, *clean)
            detected, step = monitor_check(services)
            result.control = {
                "requests": report.requests,
                "failed": report.failed,
                "drift_detected": detected,
                "alerts": len(webhook.received),
                "retrain": None if step is None or step.retrain is None else step.retrain.status,
                "served": _served_version(http),
            }
            say(f"control: 300 clean requests with feedback -> {result.control}")

            window = take(300)
            shifted = (window[1] + 1) % 10 if variant == "bad" else None
            report = replay(http, drifted(window[0]), window[1], feedback_labels=shifted)
            labeller = "a broken labeller (labels shifted by one)" if variant == "bad" else "true"
            say(f"drift: 300 turned (25 degrees), darker garments with {labeller} feedback")
            say("monitor check: drift test, alert, retrain (this trains a model)...")
            detected, step = monitor_check(services)
            result.drift_detected = detected
            result.alerts = list(webhook.received)
            if step is not None and step.retrain is not None:
                result.retrain = step.retrain.to_dict()
                say(
                    f"drift detected={detected}; {len(webhook.received)} alert(s) delivered; "
                    f"retrain {step.retrain.status}: {step.retrain.reason}"
                )
            result.outcome = _rollout(
                services, http, port, take, result, say, per_round, max_rounds
            )
            result.served_after = _served_version(http)
        result.audit_actions = [
            str(e["action"])
            for e in AuditLog(audit_path(settings.home, settings.rollout.audit_path)).read()
        ]
        say(f"outcome: {result.outcome}; serving version {result.served_after}")
        return result


def _rollout(
    services: Services,
    http: httpx.Client,
    port: int,
    take: Callable[[int], tuple[np.ndarray, np.ndarray]],
    result: LoopResult,
    say: Callable[[str], None],
    per_round: int,
    max_rounds: int,
) -> str:
    """Drifted traffic and monitor checks until the candidate is promoted or rolled back."""
    if result.retrain is None or result.retrain["status"] != "candidate":
        return "no candidate"
    version = int(result.retrain["version"])
    _wait_for(
        lambda: http.get("/v1/admin/rollout", headers=admin_headers()).json()["mode"] != "off"
    )
    for _ in range(max_rounds):
        images, labels = take(per_round)
        report = replay(http, drifted(images), labels)
        mode = http.get("/v1/admin/rollout", headers=admin_headers()).json()
        say(
            f"{per_round} drifted requests ({mode['mode']}, share {mode['share']:.0%}): "
            f"arms {report.arms}"
        )
        probe = LoadProbe(f"http://127.0.0.1:{port}", images)
        with probe:
            _, step = monitor_check(services)
            action = "idle" if step is None else step.rollout.action
            if step is not None:
                result.steps.append(step.rollout.to_dict() | {"readout": None})
                say(
                    f"controller: {action} -> share {step.rollout.share_to:.0%}: "
                    f"{'; '.join(step.rollout.reasons)}"
                )
            if action == "promote":
                served = _wait_for(lambda: _served_version(http) == version)
                time.sleep(0.5)  # requests keep flowing after the switch
                result.load_probe = probe.report
                say(f"promoted v{version}; served={served}")
        if action == "promote":
            say(
                f"load probe across the promotion: {probe.report.requests} requests, "
                f"{probe.report.failed} failed"
            )
            return "promoted"
        if action == "rollback":
            _wait_for(
                lambda: (
                    http.get("/v1/admin/rollout", headers=admin_headers()).json()["mode"] == "off"
                )
            )
            return "rolled back"
    return "undecided"


def admin_headers() -> dict[str, str]:
    """The admin token header of the scenario's server."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
