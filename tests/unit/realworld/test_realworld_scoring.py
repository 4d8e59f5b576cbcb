"""The strict mapping and the scoring of one set of predictions under two mappings (issue 21)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmnist import CLASS_NAMES, cli
from fmnist.evaluation.unknown import UNKNOWN, Verdict
from fmnist.realworld.cli import default_also_mappings, mapping_lines
from fmnist.realworld.experiment import ExperimentResult
from fmnist.realworld.harness_inputs import Prepared
from fmnist.realworld.mapping import load_mapping, parse_mapping
from fmnist.realworld.photos import LabelledPhoto
from fmnist.realworld.report import (
    SUMMARY_KEYS,
    error_sheet_name,
    error_sheets,
    report_markdown,
)
from fmnist.realworld.scoring import MappingMismatchError, score_mapping, score_mappings

REPO = Path(__file__).resolve().parents[3]
LENIENT = REPO / "config/real-world/clothing-small.yaml"
STRICT = REPO / "config/real-world/clothing-small-strict.yaml"


def test_the_strict_mapping_loads_and_differs_only_where_the_issue_says() -> None:
    strict, lenient = load_mapping(STRICT), load_mapping(LENIENT)
    assert (strict.name, strict.version) == ("clothing-small-strict", 1)
    assert strict.sha256 == hashlib.sha256(STRICT.read_bytes()).hexdigest()
    assert strict.target_names("longsleeve") == ["Pullover", "Shirt"]
    assert strict.target_names("outwear") == ["Coat"]
    assert strict.target_names("shirt") == ["Shirt"]
    changed = {c for c in lenient.photo_classes if strict.targets(c) != lenient.targets(c)}
    assert changed == {"longsleeve", "outwear", "shirt"}
    assert set(strict.photo_classes) == set(lenient.photo_classes)
    assert all(strict.targets(c) <= lenient.targets(c) for c in lenient.photo_classes)
    assert strict.source is not None and strict.source.url == lenient.source.url  # type: ignore[union-attr]
    assert STRICT.read_text(encoding="utf-8").startswith("# The strict reading")


def _verdict(answer: str) -> Verdict:
    if answer == UNKNOWN:
        return Verdict(None, UNKNOWN, 0.2, 0.0, ("low confidence",))
    return Verdict(CLASS_NAMES.index(answer), answer, 0.9, -5.0)


# (photo class, served answer, top-1 class): 8 mappable photos and 4 unmappable ones.
CASES = [
    ("longsleeve", "Pullover", "Pullover"),  # right under both
    ("longsleeve", "T-shirt/top", "T-shirt/top"),  # right only under the lenient mapping
    ("longsleeve", UNKNOWN, "Shirt"),  # withheld: wrong under both (top-1 right under both)
    ("outwear", "Pullover", "Pullover"),  # right only under the lenient mapping
    ("outwear", "Coat", "Coat"),  # right under both
    ("shirt", "T-shirt/top", "T-shirt/top"),  # right only under the lenient mapping
    ("pants", "Trouser", "Trouser"),  # right under both
    ("pants", "Dress", "Dress"),  # wrong under both
    ("hat", UNKNOWN, "Bag"),  # right: unknown
    ("hat", "Bag", "Bag"),  # wrong: answered
    ("skirt", UNKNOWN, "Dress"),
    ("shorts", UNKNOWN, "Trouser"),
]


@pytest.fixture
def predictions() -> tuple[list[LabelledPhoto], list[Verdict], np.ndarray]:
    photos = [LabelledPhoto(Path(f"/p/{c}/{i}.jpg"), c) for i, (c, _, _) in enumerate(CASES)]
    verdicts = [_verdict(a) for _, a, _ in CASES]
    top1 = np.array([CLASS_NAMES.index(t) for _, _, t in CASES], dtype=np.intp)
    return photos, verdicts, top1


def test_two_mappings_score_the_same_predictions(
    predictions: tuple[list[LabelledPhoto], list[Verdict], np.ndarray],
) -> None:
    photos, verdicts, top1 = predictions
    scores = score_mappings(photos, verdicts, top1, [load_mapping(LENIENT), load_mapping(STRICT)])
    assert list(scores) == ["clothing-small", "clothing-small-strict"]
    lenient = scores["clothing-small"].block
    strict = scores["clothing-small-strict"].block
    assert lenient["summary"] == {
        "mappable_photos": 8,
        "unmappable_photos": 4,
        "accuracy": 6 / 8,  # the abstention counts as wrong
        "answered_accuracy": 6 / 7,
        "top1_accuracy": 7 / 8,
        "mappable_abstention": 1 / 8,
        "unmappable_abstention": 3 / 4,
    }
    assert strict["summary"]["accuracy"] == 3 / 8
    assert strict["summary"]["answered_accuracy"] == 3 / 7
    assert strict["summary"]["top1_accuracy"] == 4 / 8
    assert strict["summary"]["mappable_abstention"] == lenient["summary"]["mappable_abstention"]
    # Goals: 80% lenient, 70% strict, >= 65% unmappable and <= 10% mappable abstention.
    assert lenient["goals"]["accuracy"] == {"target": ">= 80%", "value": 0.75, "met": False}
    assert strict["goals"]["accuracy"]["target"] == ">= 70%"
    assert lenient["goals"]["unmappable_abstention"]["met"] is True
    assert lenient["goals"]["mappable_abstention"] == {
        "target": "<= 10%",
        "value": 0.125,
        "met": False,
    }
    assert lenient["met"] is False and strict["met"] is False
    # Per class, each against its goal.
    assert strict["per_class"]["outwear"]["accuracy"] == 0.5
    assert strict["per_class"]["outwear"]["mapped_to"] == ["Coat"]
    assert lenient["per_class"]["outwear"]["goals"]["accuracy"]["met"] is True
    assert strict["per_class"]["hat"]["goals"]["abstention"] == {
        "target": ">= 65%",
        "value": 0.5,
        "met": False,
    }
    assert "accuracy" not in strict["per_class"]["hat"]
    # Errors: a withheld mappable photo, a wrong class, an answered unmappable photo.
    assert scores["clothing-small"].error_indices == (2, 7, 9)
    assert scores["clothing-small-strict"].error_indices == (1, 2, 3, 5, 7, 9)
    assert strict["errors"]["count"] == 6
    assert strict["errors"]["pairs"][:3] == [
        {"photo_class": "hat", "answer": "Bag", "count": 1},
        {"photo_class": "longsleeve", "answer": "T-shirt/top", "count": 1},
        {"photo_class": "longsleeve", "answer": UNKNOWN, "count": 1},
    ]
    assert strict["name"] == "clothing-small-strict" and strict["version"] == 1
    assert len(strict["sha256"]) == 64


def test_an_unlisted_mapping_has_no_accuracy_goal_but_keeps_the_abstention_goals(
    predictions: tuple[list[LabelledPhoto], list[Verdict], np.ndarray],
) -> None:
    photos, verdicts, top1 = predictions
    text = LENIENT.read_text(encoding="utf-8").replace("name: clothing-small", "name: mine")
    block = score_mapping(photos, verdicts, top1, parse_mapping(text, Path("mine.yaml"))).block
    assert block["goals"]["accuracy"] == {"target": None, "value": 0.75, "met": None}
    assert block["goals"]["unmappable_abstention"]["met"] is True
    assert block["met"] is False  # the mappable abstention goal is still missed
    given = score_mapping(photos, verdicts, top1, load_mapping(STRICT), accuracy_goal=0.3).block
    assert given["goals"]["accuracy"]["met"] is True


def test_mappings_of_other_photo_classes_are_refused(
    predictions: tuple[list[LabelledPhoto], list[Verdict], np.ndarray],
) -> None:
    photos, verdicts, top1 = predictions
    other = parse_mapping("version: 1\nname: x\nclasses:\n  hat: []\n", Path("x.yaml"))
    with pytest.raises(MappingMismatchError, match="list different photo classes"):
        score_mappings(photos, verdicts, top1, [load_mapping(LENIENT), other])
    with pytest.raises(MappingMismatchError, match="two mappings are called"):
        score_mappings(photos, verdicts, top1, [load_mapping(LENIENT), load_mapping(LENIENT)])


def test_the_report_block_renders_in_markdown_and_on_the_console(
    predictions: tuple[list[LabelledPhoto], list[Verdict], np.ndarray],
) -> None:
    photos, verdicts, top1 = predictions
    scores = score_mappings(photos, verdicts, top1, [load_mapping(LENIENT), load_mapping(STRICT)])
    report = {
        "name": "r",
        "created": "2025-01-02T03:04:05+00:00",
        "photos_folder": "/p",
        "mapping": {"name": "clothing-small", "version": 1, "sha256": "0" * 64},
        "model": {"reference": "m.onnx", "name": "m", "version": None},
        "preprocessing": "grabcut",
        "abstention": {"min_confidence": 0.5, "energy_threshold": None, "source": "model"},
        "timing": {"median_ms": 1.0, "p95_ms": 2.0},
        "cpu_timing": {"median_ms": 1.0, "p95_ms": 2.0},
        "summary": dict.fromkeys(["photos", "mappable_photos", "unmappable_photos"], 1)
        | dict.fromkeys(SUMMARY_KEYS, 0.5),
        "targets": {},
        "per_class": {},
        "confusion": {"rows": [], "columns": ["unknown"], "counts": []},
        "mappings": {name: s.block for name, s in scores.items()},
    }
    text = report_markdown(report)
    assert "## Under each mapping (issue 21's goals)" in text
    assert (
        "| clothing-small-strict v1 | 37.5% (>= 70%, not met) | 42.9% | 50.0% | "
        "75.0% (>= 65%, met) | 12.5% (<= 10%, not met) | not met |"
    ) in text
    assert "### clothing-small-strict: per class and errors" in text
    assert "| outwear | 2 | Coat | 50.0% | 0.0% | accuracy >= 70% not met; abstention" in text
    assert "6 wrong answers; most frequent (photo class -> answer): hat -> Bag 1," in text
    assert "`errors-clothing-small-strict.png`" in text
    lines = mapping_lines(report)
    assert len(lines) == 2
    assert lines[1].startswith("  mapping clothing-small-strict v1: accuracy 37.5% (>= 70%, ")


def test_the_strict_file_is_the_default_second_mapping(tmp_path: Path) -> None:
    assert default_also_mappings(LENIENT) == [STRICT]
    assert default_also_mappings(STRICT) == []  # no clothing-small-strict-strict.yaml
    lone = tmp_path / "lone.yaml"
    lone.write_text(LENIENT.read_text(encoding="utf-8"), encoding="utf-8")
    assert default_also_mappings(lone) == []


def test_the_cli_checks_every_also_mapping_before_reading_photos(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nclasses:\n  hat: [Hat]\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli.app,
        [
            "experiment",
            "real-world",
            str(tmp_path),
            "--mapping",
            str(LENIENT),
            "--also-mapping",
            str(bad),
            "--no-track",
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"{bad}:4: unknown Fashion-MNIST class 'Hat'" in result.stderr
    help_text = CliRunner().invoke(cli.app, ["experiment", "real-world", "--help"]).output
    assert "--also-mapping" in help_text


def test_each_mapping_gets_a_contact_sheet_of_its_wrong_answers(
    tmp_path: Path, predictions: tuple[list[LabelledPhoto], list[Verdict], np.ndarray]
) -> None:
    photos, verdicts, top1 = predictions
    real = []
    for i, photo in enumerate(photos):
        path = tmp_path / photo.photo_class / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (40, 30), (200, 20 * i, 0)).save(path)
        real.append(LabelledPhoto(path, photo.photo_class))
    mappings = (load_mapping(LENIENT), load_mapping(STRICT))
    scores = score_mappings(real, verdicts, top1, mappings)
    prepared = [Prepared(np.zeros((28, 28), np.uint8), 0.5, None, 1.0, 1.0) for _ in real]
    result = ExperimentResult({}, real, prepared, verdicts, top1, mappings, scores)
    written = error_sheets(result, tmp_path, per_class=2)
    assert [p.name for p in written] == [error_sheet_name(m.name) for m in mappings]
    # One row per photo class with an error: lenient longsleeve, pants, hat; strict adds
    # outwear and shirt.
    with Image.open(written[0]) as lenient, Image.open(written[1]) as strict:
        assert strict.height == lenient.height * 5 // 3
