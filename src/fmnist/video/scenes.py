"""The scenes of the demo video, in order: what each films, says and asserts.

Each :class:`Scene` has a name, a banner title, its subtitle (the narration), a target length
in the full video, the backend work done before it is filmed (cut from the video) and what it
does in the browser. Every scene waits for what it shows, so a broken page fails the recording.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fmnist import CLASS_NAMES
from fmnist.video.stage import Stage, tid
from fmnist.video.system import System, VideoError

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload

SHORT_TARGET_S = 1.0
"""Every scene's target length in the short (CI) variant."""
CLEAN_REQUESTS = 300
DRIFTED_REQUESTS = 300
ROUND_REQUESTS = 200
"""The traffic of the closed-loop scenario (:mod:`fmnist.demo.loop`): its windows and gates
are sized for these."""
ANSWER = f'{tid("result")}[data-state="answer"]'


@dataclass(frozen=True)
class Scene:
    """One scene of the video."""

    name: str
    title: str
    subtitle: str
    target_s: float
    """Its length in the full video (longer when its actions or narration take longer)."""
    play: Callable[[Stage], None]
    prepare: Callable[[System], None] | None = None
    """Backend work before filming (traffic, a retrain): not in the video."""

    def target(self, short: bool) -> float:
        """The target length of this scene in the short or the full variant."""
        return SHORT_TARGET_S if short else self.target_s


def beat(stage: Stage, seconds: float = 1.5) -> None:
    """A pause on the page (short in the CI variant)."""
    stage.hold(0.1 if stage.short else seconds)


def intro_html() -> str:
    """The title card: the project and the scenes that follow."""
    items = "".join(f"<li>{html.escape(s.title)}</li>" for s in SCENES[1:])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fmnist demo</title><style>"
        "body{margin:0;height:100vh;display:flex;align-items:center;justify-content:center;"
        "background:linear-gradient(135deg,#12263a,#23485f);color:#fff;"
        "font-family:system-ui,sans-serif}main{max-width:80%}h1{font-size:2.6em;margin:0 0 .2em}"
        "p{font-size:1.15em;opacity:.85;margin:0 0 1em}ol{columns:2;font-size:1em;opacity:.9}"
        "</style></head><body><main id='intro'><h1>fmnist</h1>"
        "<p>Fashion-MNIST from raw data to a monitored service: the real system, end to end.</p>"
        f"<ol>{items}</ol></main></body></html>"
    )


def _intro(stage: Stage) -> None:
    stage.page.set_content(intro_html())
    stage.decorate()
    stage.wait_for("#intro h1")


def _upload(stage: Stage) -> None:
    stage.goto(f"{stage.system.url}/")
    stage.wait_for(tid("sample"))
    stage.point(tid("drop-zone"))
    upload: FilePayload = {"name": "garment.png", "mimeType": "image/png", "buffer": stage.garment}
    stage.page.set_input_files(tid("upload-input"), files=[upload])
    stage.wait_for(ANSWER)
    stage.wait_for(tid("top3-item"))
    beat(stage)
    stage.point(tid("top3"))
    beat(stage)
    stage.point(tid("model-input"))


def _photo(stage: Stage) -> None:
    stage.point(tid("drop-zone"))
    stage.page.set_input_files(tid("upload-input"), str(stage.photo))
    stage.wait_for(f'{tid("result-path")}[data-path="photo"]')
    stage.wait_for(ANSWER)
    beat(stage)
    stage.point(tid("original-image"))
    beat(stage)
    stage.point(tid("result-label"))


def _explain(stage: Stage) -> None:
    sample = f"{tid('sample')} >> nth=0"
    with stage.page.expect_response(lambda r: "/v1/predict" in r.url) as predicted:
        stage.click(sample)
    if predicted.value.status != 200:
        raise VideoError(f"/v1/predict answered {predicted.value.status}")
    stage.wait_for(tid("result-truth"))
    beat(stage, 1.0)
    with stage.page.expect_response(lambda r: "/v1/explain" in r.url, timeout=60_000) as why:
        stage.click(tid("explain-button"))
    if why.value.status != 200:
        raise VideoError(f"/v1/explain answered {why.value.status}")
    stage.wait_for(tid("explain-heatmap"))
    width = stage.page.locator(tid("explain-heatmap")).evaluate("img => img.naturalWidth")
    if not width:
        raise VideoError("the explanation heatmap did not load")
    stage.point(tid("explain-heatmap"))


def _feedback(stage: Stage) -> None:
    truth = stage.attribute(f"{tid('sample')} >> nth=0", "data-label")
    if truth not in CLASS_NAMES:
        raise VideoError(f"the sample's label {truth!r} is not a class")
    stage.wait_for(tid("feedback"))
    stage.point(tid("feedback-class"))
    stage.page.select_option(tid("feedback-class"), label=truth)
    stage.recorder.capture()
    with stage.page.expect_response(lambda r: "/v1/feedback" in r.url) as sent:
        stage.click(tid("feedback-send"))
    if sent.value.status != 201:
        raise VideoError(f"/v1/feedback answered {sent.value.status}")
    stage.wait_for(f'{tid("feedback")}[data-state="saved"]')


def _monitoring_page(stage: Stage, drift_status: str) -> None:
    stage.goto(f"{stage.system.url}/monitoring.html")
    stage.wait_for(f'{tid("tile-drift")}[data-status="{drift_status}"]')
    stage.wait_for(f"{tid('chart-timeline')} svg")


def _before_clean(system: System) -> None:
    """Clean validation images with feedback, then a monitor check (no drift)."""
    system.send(CLEAN_REQUESTS, shifted=False)
    if system.check():
        raise VideoError("the monitor saw drift in clean traffic")


def _monitoring(stage: Stage) -> None:
    _monitoring_page(stage, "no_drift")
    stage.point(tid("tile-predictions"))
    beat(stage)
    stage.scroll_to(tid("chart-timeline"))
    beat(stage)
    stage.scroll_to(tid("drift-status"))


def _before_drift(system: System) -> None:
    """Drifted images with feedback, then a monitor check: drift, alert, retrain, gates,
    shadow."""
    system.send(DRIFTED_REQUESTS, shifted=True)
    if not system.check():
        raise VideoError("the monitor did not detect the drifted traffic")
    if system.candidate_version is None:
        raise VideoError("the drift did not produce a retrained candidate")
    system.wait(lambda: system.rollout()["mode"] == "shadow")


def _drift(stage: Stage) -> None:
    _monitoring_page(stage, "drift_detected")
    stage.point(tid("tile-drift"))
    beat(stage)
    stage.scroll_to(tid("drift-status"))
    stage.wait_for(f"{tid('chart-drift')} svg")
    beat(stage)
    stage.scroll_to(tid("alerts"))
    stage.wait_for(f"{tid('alerts')} li")


def _experiment(stage: Stage, mode: str) -> None:
    _monitoring_page(stage, "drift_detected")
    stage.scroll_to(tid("experiment"))
    stage.wait_for(f'{tid("experiment-caption")}:has-text("{mode}")')
    stage.wait_for(f"{tid('chart-experiment')} svg")
    stage.point(tid("experiment-caption"))


def _before_retrain(system: System) -> None:
    """More drifted traffic, which the shadow arm scores too (its readout)."""
    system.send(ROUND_REQUESTS, shifted=True)


def _retrain(stage: Stage) -> None:
    _experiment(stage, "shadow")


def _before_canary(system: System) -> None:
    """Drifted traffic and monitor checks until the controller starts the canary, then
    traffic to both arms."""
    system.advance(lambda: system.rollout()["mode"] == "canary", per_round=ROUND_REQUESTS)
    system.send(ROUND_REQUESTS, shifted=True)  # both arms answer: the canary's readout


def _canary(stage: Stage) -> None:
    _experiment(stage, "canary")


def _before_promote(system: System) -> None:
    """Drifted traffic and monitor checks until the candidate is promoted and served."""
    candidate = system.candidate_version
    system.advance(lambda: system.served_version() == candidate, per_round=ROUND_REQUESTS)


def _promote(stage: Stage) -> None:
    version = stage.system.candidate_version
    stage.goto(f"{stage.system.url}/")
    stage.wait_for(f'{tid("model-version")}[data-version="{version}"]')
    stage.point(tid("model-version"))
    beat(stage)
    with stage.page.expect_response(lambda r: "/v1/predict" in r.url):
        stage.click(f"{tid('sample')} >> nth=1")
    stage.wait_for(ANSWER)


def _model_card(stage: Stage) -> None:
    stage.wait_for(tid("link-model-card"))
    stage.point(tid("link-model-card"))
    href = stage.page.locator(tid("link-model-card")).evaluate("a => a.href")
    stage.goto(str(href))
    stage.wait_for("h1")
    beat(stage)
    stage.scroll_to("h2 >> nth=1")
    beat(stage)
    stage.scroll_to("h2 >> nth=2")


def _leaderboard(stage: Stage) -> None:
    stage.goto(f"{stage.system.docs_url}/benchmarks/")
    stage.wait_for("article h1")
    stage.scroll_to("article table")
    beat(stage)
    stage.point("article table tbody tr >> nth=0")


def _docs(stage: Stage) -> None:
    stage.goto(f"{stage.system.docs_url}/")
    stage.wait_for("article h1")
    beat(stage)
    stage.goto(f"{stage.system.docs_url}/rollout/")
    stage.wait_for("article h1")
    beat(stage)
    stage.goto(f"{stage.system.docs_url}/video/")
    stage.wait_for("article h1")


SCENES: tuple[Scene, ...] = (
    Scene(
        "intro",
        "fmnist",
        "fmnist: Fashion-MNIST from raw data to a monitored service. "
        "Everything that follows is the real system, driven in a real browser.",
        8,
        _intro,
    ),
    Scene(
        "upload",
        "Upload a garment",
        "Upload a picture of a garment: the served model answers with its label, the top three "
        "classes and the 28 by 28 image it saw.",
        14,
        _upload,
    ),
    Scene(
        "photo",
        "A real photo",
        "A real photo, taken on an ordinary background: it is segmented and answered by the "
        "photo path, or called unknown when the model is unsure.",
        13,
        _photo,
    ),
    Scene(
        "explain",
        "Why? The explanation heatmap",
        "Pick a test image, then ask why: integrated gradients show the pixels that pushed the "
        "model towards its answer, in red, and away from it, in blue.",
        13,
        _explain,
    ),
    Scene(
        "feedback",
        "Feedback",
        "Wrong? Pick the right class. The label is stored with the prediction; live accuracy "
        "and retraining use it.",
        11,
        _feedback,
    ),
    Scene(
        "monitoring",
        "Monitoring: clean traffic",
        f"{CLEAN_REQUESTS} requests of clean traffic, with feedback: the monitoring page shows "
        "traffic, confidence, live accuracy, and a drift check that finds no drift.",
        14,
        _monitoring,
        _before_clean,
    ),
    Scene(
        "drift",
        "Monitoring: drifted traffic",
        f"Then {DRIFTED_REQUESTS} garments turned by 25 degrees and photographed darker: the "
        "drift tests fire, and the alert is delivered to its webhook.",
        15,
        _drift,
        _before_drift,
    ),
    Scene(
        "retrain",
        "Retrain, gates, shadow",
        "The alert triggers a retrain on the window's feedback. The candidate passes its gates "
        "and starts in shadow: it scores every request, the champion still answers.",
        14,
        _retrain,
        _before_retrain,
    ),
    Scene(
        "canary",
        "Canary",
        "Shadow traffic shows the candidate is not worse, so the controller moves it to a "
        "canary: a share of clients now get its answers, guarded by latency and error rates.",
        13,
        _canary,
        _before_canary,
    ),
    Scene(
        "promote",
        "Promotion",
        "The canary goes through its steps and the candidate is promoted: every server "
        "hot-reloads the new champion, and no request fails on the way.",
        12,
        _promote,
        _before_promote,
    ),
    Scene(
        "model-card",
        "Model card",
        "Every registered version has a model card: its metrics, slices, behavioural tests "
        "and limitations.",
        13,
        _model_card,
    ),
    Scene(
        "leaderboard",
        "Leaderboard",
        "The leaderboard compares every model of the zoo on the same test set: accuracy, "
        "calibration, size and speed, each with the command that measured it.",
        12,
        _leaderboard,
    ),
    Scene(
        "docs",
        "Documentation",
        "The documentation site covers each part of the system, with the figures generated "
        "from measured results. make video recorded this film.",
        12,
        _docs,
    ),
)
POSTER_SCENE = "explain"
"""The scene whose last frame is the poster image."""


def scene_names() -> list[str]:
    """The names of the scenes, in order."""
    return [scene.name for scene in SCENES]
