"""The model card renderers: every section, Markdown and a self-contained HTML page."""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.config import EvaluationSettings, GateSettings
from fmnist.evaluation.calibration import softmax
from fmnist.evaluation.card_data import CardDetails, CardImage, RealPhotoFigures
from fmnist.evaluation.gates import apply_gates
from fmnist.evaluation.metrics import evaluate_logits
from fmnist.evaluation.model_card import (
    HTML_FILE,
    MARKDOWN_FILE,
    model_card_html,
    model_card_markdown,
    write_model_cards,
)
from fmnist.evaluation.responsible import responsible_evaluation

from .synthetic import overconfident_logits

SECTIONS = [
    "Model",
    "Intended use",
    "Out-of-scope use",
    "Training data",
    "Metrics",
    "Per-class metrics and disparity",
    "Most confused pairs",
    "Slices",
    "Robustness (accuracy under corruption)",
    "Behavioural tests",
    "Calibration",
    "Explanation examples",
    "Promotion gates",
    "Limitations",
]


class _Page(HTMLParser):
    """Collects tags, URLs and section ids of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if values.get("id"):
            self.ids.append(str(values["id"]))
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings.append(data)


@pytest.fixture(scope="module")
def card_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A synthetic model's evaluation, responsible part included, as card arguments."""
    rng = np.random.default_rng(0)
    logits, labels = overconfident_logits(600, seed=0, scale=1.0)
    images = np.zeros((600, 28, 28), dtype=np.uint8)
    for i in range(600):
        h, w = rng.integers(6, 24, size=2)
        images[i, 2 : 2 + h, 2 : 2 + w] = rng.integers(40, 255)
    report = evaluate_logits(logits, labels, temperature=1.0)
    report = report.model_copy(update={"robustness": {"clean": report.accuracy, "blur": 0.5}})
    out = tmp_path_factory.mktemp("card")
    predicted = logits.argmax(axis=1)
    lookup = {images[i].tobytes(): int(predicted[i]) for i in range(600)}

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.array([lookup.get(x.tobytes(), 0) for x in batch])

    responsible = responsible_evaluation(
        EvaluationSettings(bootstrap_resamples=50, behavioural_sample=100),
        images=images,
        labels=labels,
        probs=softmax(logits),
        predict=predict,
        report=report,
        class_names=CLASS_NAMES,
        out=out,
        reference=(images[:300], labels[:300]),
        data_counts={"train": 54_000, "val": 6_000, "test": 600},
    )
    return {
        "name": "fmnist-<classifier>",
        "run_id": "run|1",
        "snapshot_id": "snap0",
        "config": {"model": "cnn", "model_options": {}},
        "training": {"Parameters": 1234},
        "report": report,
        "decision": apply_gates(report, GateSettings()),
        "quantization": {"accepted": True},
        "details": responsible.details,
    }


def _sections(markdown: str) -> dict[str, str]:
    parts = re.split(r"^## ", markdown, flags=re.MULTILINE)[1:]
    return {p.split("\n", 1)[0]: p.split("\n", 1)[1] for p in parts}


def test_markdown_has_every_section_in_order(card_inputs: dict[str, object]) -> None:
    markdown = model_card_markdown(**card_inputs)  # type: ignore[arg-type]
    sections = _sections(markdown)
    titles = [t for t in sections if t != "INT8 quantization"]
    assert titles == SECTIONS
    assert "- Parameters: 1234" in sections["Model"]
    assert "Training run: `run|1`" in sections["Model"]
    assert "Explanation examples: not available: no model weights given." in markdown
    assert "**" in sections["Slices"]  # the weakest slices are highlighted
    assert "![" in sections["Calibration"] and "classwise_reliability.png" in markdown


def test_html_is_self_contained_and_escaped(card_inputs: dict[str, object]) -> None:
    page_text = model_card_html(**card_inputs)  # type: ignore[arg-type]
    page = _Page()
    page.feed(page_text)
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert "style" in page.tags
    images = [u for u in page.urls if not u.startswith("#")]
    assert images and all(u.startswith("data:image/png;base64,") for u in images)
    for url in images:
        assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert [h for h in page.headings if h != "INT8 quantization"] == SECTIONS
    assert len(set(page.ids)) == len(page.ids)
    assert all(f"#{i}" in page.urls for i in page.ids)  # the table of contents links them all
    assert "fmnist-&lt;classifier&gt;" in page_text and "<classifier>" not in page_text
    assert 'class="highlight"' in page_text
    assert not re.search(r"(src|href)=\"(https?:)?//", page_text)


def test_card_without_details_still_renders_every_section(card_inputs: dict[str, object]) -> None:
    inputs = dict(card_inputs, details=None, quantization=None)
    sections = _sections(model_card_markdown(**inputs))  # type: ignore[arg-type]
    assert list(sections) == SECTIONS
    assert sections["Slices"].strip() == "Not measured."
    assert "Explanation examples: not available." in sections["Explanation examples"]


def test_explanation_examples_are_taken_as_plain_data(card_inputs: dict[str, object]) -> None:
    example = CardImage("test image 7 (wrong): true Shirt", b"\x89PNG\r\n\x1a\nfake", "e.png")
    details = CardDetails(explanations=[example], explanations_note="1 wrong prediction")
    inputs = dict(card_inputs, details=details)
    markdown = model_card_markdown(**inputs)  # type: ignore[arg-type]
    assert "![test image 7 (wrong): true Shirt](e.png)" in markdown
    page = model_card_html(**inputs)  # type: ignore[arg-type]
    assert base64.b64encode(example.png).decode() in page


def test_write_model_cards_writes_both_files(
    card_inputs: dict[str, object], tmp_path: Path
) -> None:
    paths = write_model_cards(tmp_path, **card_inputs)  # type: ignore[arg-type]
    assert paths == {
        "model_card": tmp_path / MARKDOWN_FILE,
        "model_card_html": tmp_path / HTML_FILE,
    }
    assert paths["model_card"].read_text().startswith("# Model card: fmnist-<classifier>")
    assert paths["model_card_html"].read_text().startswith("<!doctype html>")


def _out_of_scope(markdown: str) -> str:
    return _sections(markdown)["Out-of-scope use"]


def test_real_photo_accuracy_is_not_claimed_when_not_measured(
    card_inputs: dict[str, object],
) -> None:
    """No fixed photo figures from another run: the card says so and names the command."""
    text = _out_of_scope(model_card_markdown(**card_inputs))  # type: ignore[arg-type]
    assert "Real-photo accuracy: not measured for this version" in text
    assert "`fmnist experiment real-world PHOTOS --model fmnist-<classifier>@VERSION`" in text
    assert "bench_photos" not in text and not re.search(r"\d%", text)


def test_real_photo_figures_measured_for_the_version_are_shown_with_their_source(
    card_inputs: dict[str, object],
) -> None:
    report = {
        "preprocessing": "grabcut",
        "summary": {
            "mappable_photos": 35,
            "unmappable_photos": 15,
            "mappable_accuracy": 0.6,
            "mappable_wrong_answers": 0.2,
            "mappable_abstention": 0.1,
            "unmappable_abstention": None,
        },
    }
    figures = RealPhotoFigures.from_report(report, "experiments/2025-01-02-cnn-v3-grabcut")
    details = dataclasses.replace(card_inputs["details"], real_photos=figures)  # type: ignore[type-var]
    inputs = dict(card_inputs, details=details)
    text = _out_of_scope(model_card_markdown(**inputs))  # type: ignore[arg-type]
    assert "not measured" not in text
    assert "Measured for this version by `fmnist experiment real-world`" in text
    assert "experiments/2025-01-02-cnn-v3-grabcut; grabcut preprocessing" in text
    assert "of the 35 photos whose garment has a Fashion-MNIST class" in text
    assert "right for 60.0%" in text and "wrong class for 20.0%" in text
    assert "declined 10.0%; it declined – of the 15 photos without a class" in text
    page = model_card_html(**inputs)  # type: ignore[arg-type]
    assert "experiments/2025-01-02-cnn-v3-grabcut; grabcut preprocessing" in page
