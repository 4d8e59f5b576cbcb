"""Feedback from the web UI and the monitoring page, in a real browser against the real app.

"Wrong? Pick the right class" posts to /v1/feedback and shows saved / already saved / conflict;
the monitoring page draws /v1/monitoring/summary as SVG charts, before and after a real drift
check of the logged traffic (the library path of ``fmnist monitor drift``). Screenshots go to
``tests/browser/artifacts/``; ``docs/images/monitoring.png`` is written when missing or when
``FMNIST_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from app_server import running
from fmnist import CLASS_NAMES
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.evaluation.run import evaluate_and_register
from fmnist.monitoring.alerts import Observations, default_state_path, evaluate_alerts
from fmnist.monitoring.report import reports_root

from .support import ARTIFACTS, CHROMIUM, REPO_ROOT

pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install 'playwright==1.65.*')",
)
if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} not found (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.network]

MONITORING_SCREENSHOT = REPO_ROOT / "docs/images/monitoring.png"
MONITORING_SCREENSHOT_MAX_BYTES = 200 * 1024
UPDATE_SCREENSHOTS = os.environ.get("FMNIST_UPDATE_SCREENSHOTS") == "1"
"""Read at import: each test runs without the FMNIST_* variables of the environment."""


def tid(name: str) -> str:
    """The selector of a ``data-testid``."""
    return f'[data-testid="{name}"]'


def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot in the artifacts folder."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def summary(api: httpx.Client, **params: object) -> dict[str, object]:
    """``GET /v1/monitoring/summary``."""
    response = api.get("/v1/monitoring/summary", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def labelled(api: httpx.Client) -> tuple[int, int]:
    """Labelled and out-of-scope feedback in the last 24 hours."""
    live = summary(api)["live_accuracy"]
    assert isinstance(live, dict)
    return int(live["labelled"]), int(live["out_of_scope"])


@pytest.fixture
def clean_monitoring(ui_settings: Settings) -> Iterator[None]:
    """No drift report or alert state before the test, nor after it."""
    paths = (reports_root(ui_settings.home), default_state_path(ui_settings.home).parent)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    yield
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def test_feedback_from_the_result_panel(page: Page, api: httpx.Client) -> None:
    """Pick the right class under a prediction: saved, then already saved, then a different
    class is a conflict; "none of these" records an out-of-scope item."""
    before = labelled(api)
    feedback = page.locator(tid("feedback"))
    expect(feedback).to_be_hidden()  # nothing to give feedback on yet
    sample = page.locator(tid("sample")).first
    truth = sample.get_attribute("data-label")
    with page.expect_response(lambda r: "/v1/predict" in r.url) as predicted:
        sample.click()
    request_id = predicted.value.json()["predictions"][0]["request_id"]
    expect(page.locator(f'{tid("result")}[data-state="answer"]')).to_be_visible()
    expect(feedback).to_be_visible()
    expect(feedback).to_contain_text("Wrong? Pick the right class")
    send = page.locator(tid("feedback-send"))
    expect(send).to_be_disabled()
    options = page.locator(f"{tid('feedback-class')} option")
    expect(options).to_have_count(1 + len(CLASS_NAMES) + 1)  # placeholder, classes, none

    page.select_option(tid("feedback-class"), label=truth)
    with page.expect_response(lambda r: "/v1/feedback" in r.url) as sent:
        send.click()
    assert sent.value.status == 201
    assert sent.value.request.post_data_json == {
        "request_id": request_id,
        "label": CLASS_NAMES.index(truth),
    }
    expect(feedback).to_have_attribute("data-state", "saved")
    expect(page.locator(tid("feedback-status"))).to_contain_text("Saved")
    screenshot(page, "feedback-saved")
    assert labelled(api) == (before[0] + 1, before[1])

    with page.expect_response(lambda r: "/v1/feedback" in r.url) as again:
        send.click()
    assert again.value.status == 200
    expect(feedback).to_have_attribute("data-state", "unchanged")
    expect(page.locator(tid("feedback-status"))).to_have_text("Already saved.")

    other = next(name for name in CLASS_NAMES if name != truth)
    page.select_option(tid("feedback-class"), label=other)
    with page.expect_response(lambda r: "/v1/feedback" in r.url) as conflict:
        send.click()
    assert conflict.value.status == 409
    detail = conflict.value.json()["detail"]
    expect(feedback).to_have_attribute("data-state", "conflict")
    expect(page.locator(tid("feedback-status"))).to_have_text(f"Not saved: {detail}")
    screenshot(page, "feedback-conflict")
    assert labelled(api) == (before[0] + 1, before[1])

    with page.expect_response(lambda r: "/v1/predict" in r.url):
        page.locator(tid("sample")).nth(1).click()
    expect(feedback).to_have_attribute("data-state", "idle")  # a new prediction: a new form
    page.select_option(tid("feedback-class"), value="unknown")
    with page.expect_response(lambda r: "/v1/feedback" in r.url) as none:
        send.click()
    assert none.value.status == 201
    assert none.value.request.post_data_json["unknown"] is True
    expect(feedback).to_have_attribute("data-state", "saved")
    assert labelled(api) == (before[0] + 1, before[1] + 1)


def _traffic(api: httpx.Client, n: int = 100, labels: int = 40) -> None:
    """Send ``n`` test images through /v1/predict/batch and the true class of ``labels`` of
    them through /v1/feedback, as clients would."""
    samples = api.get("/v1/samples", params={"n": n, "seed": 7}).json()["samples"]
    answer = api.post(
        "/v1/predict/batch", json={"instances": [{"b64": s["png_b64"]} for s in samples]}
    )
    assert answer.status_code == 200, answer.text
    for sample, prediction in list(zip(samples, answer.json()["predictions"], strict=True))[
        :labels
    ]:
        sent = api.post(
            "/v1/feedback",
            json={"request_id": prediction["request_id"], "label": sample["class_id"]},
        )
        assert sent.status_code == 201, sent.text


def _drift_check(settings: Settings) -> bool:
    """A real drift check of the logged traffic against the served model's reference (what
    ``fmnist monitor drift`` runs); writes its report. Returns the verdict."""
    from fmnist.monitoring.monitor import read_window, resolve_target, run_check

    services = build_services(settings)
    target = resolve_target(services)
    window, _ = read_window(
        services.prediction_log, last=1000, since=None, model_name=target.reference.info.model_name
    )
    assert len(window) >= settings.drift.min_window
    result, _ = run_check(settings, target, window)
    assert result.report_path is not None
    return result.drift_detected


def test_the_monitoring_page_draws_the_summary(
    page: Page, api: httpx.Client, ui_settings: Settings, clean_monitoring: None
) -> None:
    """Charts of traffic, confidence and live accuracy; drift "not checked yet", then the
    verdict of a real check with its report; firing alerts."""
    _traffic(api)
    with page.expect_navigation():
        page.locator(tid("link-monitoring")).click()
    assert page.url.endswith("/monitoring.html")
    monitoring = page.locator(f'{tid("monitoring")}[data-state="ready"]')
    expect(monitoring).to_be_visible()
    expected = summary(api)

    timeline = page.locator(f"{tid('chart-timeline')} svg")
    expect(timeline).to_have_count(1)
    assert timeline.locator("rect.mark").count() > 0
    assert timeline.locator("text.tick").count() >= 3  # axes with labels
    legend = page.locator(f"{tid('timeline-legend')} li")
    expect(legend).to_have_count(11)
    expect(legend.last).to_contain_text("unknown")
    confidence = page.locator(f"{tid('chart-confidence')} svg rect.mark")
    assert confidence.count() > 0
    box = page.locator(f"{tid('chart-confidence')} svg").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    expect(page.locator(tid("tile-predictions"))).to_have_text(f"{expected['predictions']:,}")

    accuracy = page.locator(f"{tid('chart-accuracy')} svg")
    expect(accuracy.locator("circle.point")).to_have_count(1)  # one served version
    assert accuracy.locator(".whisker line").count() == 3
    assert page.locator(f"{tid('chart-accuracy-classes')} svg circle.point").count() >= 5

    drift = page.locator(tid("drift-status"))
    expect(drift).to_have_text("Not checked yet")
    expect(drift).to_have_attribute("data-status", "not_checked")
    expect(page.locator(tid("drift-report-link"))).to_be_hidden()
    expect(page.locator(tid("alerts-none"))).to_be_visible()
    screenshot(page, "monitoring-not-checked")

    detected = _drift_check(ui_settings)
    evaluate_alerts(  # what a monitor that measured a slow p95 would have recorded
        Observations(latency_p95_s=5.0, requests=1000, drift_detected=detected),
        ui_settings.alerts,
        default_state_path(ui_settings.home),
    )
    page.locator(tid("refresh")).click()
    verdict = "Drift detected" if detected else "No drift"
    expect(drift).to_have_text(verdict)
    tests = summary(api)["drift"]["tests"]  # type: ignore[index]
    rows = page.locator(f"{tid('chart-drift')} svg g.row")
    expect(rows).to_have_count(len(tests))
    assert page.locator(f"{tid('chart-drift')} svg rect.bar").count() >= 5
    expect(page.locator(f"{tid('chart-drift')} svg")).to_contain_text("bbsd_ks")
    alerts = page.locator(tid("alert"))
    expect(alerts.filter(has_text="latency_p95_high")).to_have_count(1)
    severity = ui_settings.alerts.latency_p95.severity
    expect(alerts.filter(has_text="latency_p95_high").locator(".severity")).to_have_text(severity)

    link = page.locator(tid("drift-report-link"))
    expect(link).to_be_visible()
    report = api.get(link.evaluate("a => a.href"))
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert len(report.content) > 10_000  # Evidently's self-contained page

    screenshot(page, "monitoring")
    if not MONITORING_SCREENSHOT.exists() or UPDATE_SCREENSHOTS:
        MONITORING_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(MONITORING_SCREENSHOT), full_page=True)
    assert MONITORING_SCREENSHOT.stat().st_size < MONITORING_SCREENSHOT_MAX_BYTES
    page.emulate_media(color_scheme="dark")
    screenshot(page, "monitoring-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    # Redrawn at the narrow width, so its text keeps its size. (Polled with evaluate:
    # wait_for_function compiles its predicate in the page, which the page's CSP forbids.)
    width = "() => document.querySelector('[data-testid=chart-timeline] svg').viewBox.baseVal.width"
    for _ in range(100):
        if page.evaluate(width) < 400:
            break
        page.wait_for_timeout(50)
    assert page.evaluate(width) < 400
    screenshot(page, "monitoring-mobile")

    # the report runs its own inline scripts under the sandboxing CSP, and draws its charts
    page.set_viewport_size({"width": 1280, "height": 860})
    page.emulate_media(color_scheme="light")
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(link.evaluate("a => a.href"))
    expect(page.get_by_text("Data Drift Summary")).to_be_visible(timeout=30_000)
    assert page.locator("svg").count() > 0  # its distribution plots
    assert not blocked, blocked
    screenshot(page, "evidently-report")


def test_the_monitoring_page_shows_the_running_experiment(
    page: Page, ui_settings: Settings, clean_monitoring: None
) -> None:
    """An A/B test started through the admin API: arms, split, accuracy per arm, decision."""

    services = build_services(ui_settings)
    challenger = evaluate_and_register(services, promote=False, quantize=False).version
    assert challenger is not None
    token = "browser-admin-token"
    serving = ui_settings.serving.model_copy(update={"admin_token": SecretStr(token)})
    state = ui_settings.home / "rollout" / "state.json"
    admin = {"Authorization": f"Bearer {token}"}
    try:
        with (
            running(ui_settings.model_copy(update={"serving": serving})) as url,
            httpx.Client(base_url=url, trust_env=False, timeout=30) as http,
        ):
            change = {
                "mode": "ab",
                "experiment": "exp-ui",
                "challenger": str(challenger.version),
                "share": 0.5,
            }
            assert http.put("/v1/admin/rollout", json=change, headers=admin).status_code == 200
            for i in range(60):
                body = {"instances": [[(i * 13 + j) % 256 for j in range(784)]]}
                answer = http.post("/v1/predict", json=body, headers={"X-Client-ID": f"c{i}"})
                assert answer.status_code == 200, answer.text
                prediction = answer.json()["predictions"][0]
                sent = http.post(
                    "/v1/feedback",
                    json={"request_id": prediction["request_id"], "label": i % 10},
                )
                assert sent.status_code == 201, sent.text
            page.goto(f"{url}/monitoring.html")
            expect(page.locator(f'{tid("monitoring")}[data-state="ready"]')).to_be_visible()
            caption = page.locator(tid("experiment-caption"))
            expect(caption).to_contain_text('ab "exp-ui"')
            expect(caption).to_contain_text(f"v{challenger.version}")
            expect(caption).to_contain_text("50% of clients")
            points = page.locator(f"{tid('chart-experiment')} svg circle.point")
            expect(points).to_have_count(2)  # champion and challenger, with intervals
            decision = page.locator(tid("experiment-decision"))
            expect(decision).to_contain_text("Decision: continue")
            expect(decision).to_have_attribute("data-decision", "continue")
            screenshot(page, "monitoring-experiment")
            http.put("/v1/admin/rollout", json={"mode": "off"}, headers=admin)
    finally:
        state.unlink(missing_ok=True)
