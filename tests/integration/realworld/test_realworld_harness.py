"""The experiment harness on a small folder of real photos, checked against independent counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmnist import cli, cli_support
from fmnist.evaluation.unknown import BLANK_FOREGROUND_FRACTION
from fmnist.imaging.preprocess import preprocess_bytes
from fmnist.realworld.experiment import HarnessConfig, run_harness
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photos import scan_folder
from fmnist.realworld.train_photos import EXPERIMENT
from fmnist.registry.onnx_runtime import OnnxClassifier

from .conftest import MAPPING, PhotoHome


def test_the_report_agrees_with_an_independent_count(
    photo_home: PhotoHome, mapping: ClassMapping
) -> None:
    result = run_harness(
        photo_home.services, photo_home.folder, mapping, HarnessConfig(), show_progress=False
    )
    report = result.report
    photos = scan_folder(photo_home.folder, mapping)
    assert report["summary"]["photos"] == len(photos) == 50
    assert report["summary"]["unmappable_photos"] == 15  # hat, shorts, skirt
    assert report["model"]["name"] == "fmnist-classifier"
    # The same photos through the preprocessing and the model, counted here.
    model = OnnxClassifier(Path(report["model"]["path"]))
    pixels = np.stack([preprocess_bytes(p.path.read_bytes()).pixels for p in photos])
    top1 = model.run(pixels)[0].argmax(axis=1)
    hits = [int(top1[i]) in mapping.targets(p.photo_class) for i, p in enumerate(photos)]
    mappable = [mapping.is_mappable(p.photo_class) for p in photos]
    expected = sum(h for h, m in zip(hits, mappable, strict=True) if m) / sum(mappable)
    assert report["summary"]["mappable_accuracy"] == pytest.approx(expected)
    for name, row in report["per_class"].items():
        assert row["n"] == 5
        assert sum(row["answers"].values()) == 5
        assert row["mapped_to"] == mapping.target_names(name)
    counts = np.array(report["confusion"]["counts"])
    assert counts.sum() == 50 and counts.shape == (10, 11)
    assert report["confusion"]["columns"][-1] == "unknown"
    unknown = counts[:, -1].sum()
    assert unknown == sum(v.is_unknown for v in result.verdicts)
    assert report["fashion_mnist_test_accuracy"] is not None
    # Without other mappings, the mappings block holds the report's own, agreeing with summary.
    assert list(report["mappings"]) == ["clothing-small"]
    own = report["mappings"]["clothing-small"]["summary"]
    assert own["accuracy"] == pytest.approx(report["summary"]["mappable_correct_answers"])
    assert own["top1_accuracy"] == pytest.approx(report["summary"]["mappable_accuracy"])
    assert own["mappable_abstention"] == report["summary"]["mappable_abstention"]
    assert set(report["targets"]) == {
        "mappable_accuracy",
        "unmappable_abstention",
        "mappable_abstention",
    }


def test_thresholds_with_known_answers(photo_home: PhotoHome, mapping: ClassMapping) -> None:
    """No rule at all refuses only blank photos (no garment found); an impossible energy
    ceiling refuses everything."""
    photos = scan_folder(photo_home.folder, mapping)
    blank = [
        preprocess_bytes(p.path.read_bytes()).foreground_fraction < BLANK_FOREGROUND_FRACTION
        for p in photos
    ]
    mappable = np.array([mapping.is_mappable(p.photo_class) for p in photos])
    never = run_harness(
        photo_home.services,
        photo_home.folder,
        mapping,
        HarnessConfig(min_confidence=0.0, no_energy_rule=True),
        show_progress=False,
    ).report["summary"]
    assert never["mappable_abstention"] == pytest.approx(np.mean(np.array(blank)[mappable]))
    assert never["unmappable_abstention"] == pytest.approx(np.mean(np.array(blank)[~mappable]))
    assert never["blank"] == pytest.approx(np.mean(blank))
    always = run_harness(
        photo_home.services,
        photo_home.folder,
        mapping,
        HarnessConfig(min_confidence=0.0, energy_threshold=-1e9),
        show_progress=False,
    ).report["summary"]
    assert always["mappable_abstention"] == 1.0 and always["unmappable_abstention"] == 1.0
    assert always["mappable_correct_answers"] == 0.0


def test_the_photo_model_and_other_preprocessings(
    photo_home: PhotoHome, mapping: ClassMapping
) -> None:
    adapted = run_harness(
        photo_home.services,
        photo_home.folder,
        mapping,
        HarnessConfig(model="fmnist-photos@champion"),
        show_progress=False,
    ).report
    calibration = photo_home.adaptation.adapted.calibration
    assert calibration is not None
    assert adapted["model"]["name"] == "fmnist-photos"
    assert adapted["abstention"]["min_confidence"] == calibration.min_confidence
    assert adapted["abstention"]["source"] == "model"
    naive = run_harness(
        photo_home.services,
        photo_home.folder,
        mapping,
        HarnessConfig(preprocessing="naive", calibrate_on=photo_home.folder),
        show_progress=False,
    ).report
    assert naive["preprocessing"] == "naive"
    assert naive["abstention"]["calibration"]["mappable"] == 14  # 2 per mappable class
    assert "calibrated on" in naive["abstention"]["source"]


def test_the_command_writes_dated_reports_and_tracks_them(
    photo_env: PhotoHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_support.console, "width", 240)  # no wrapping in the comparison table
    runner = CliRunner()
    args = [
        "experiment",
        "real-world",
        str(photo_env.folder),
        "--mapping",
        str(MAPPING),
        "--output",
        str(tmp_path),
        "--name",
        "smoke test",
        "--sheet-per-class",
        "2",
        "--no-progress",
    ]
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli.app, [*args, "--no-track", "--preprocessing", "colour"])
    assert second.exit_code == 0, second.output
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and re.fullmatch(r"\d{4}-\d{2}-\d{2}-smoke-test", folders[0])
    assert folders[1] == f"{folders[0]}-2"
    report_dir = tmp_path / folders[0]
    names = {p.name for p in report_dir.iterdir()}
    assert {"report.json", "report.md", "confusion.png", "contact_sheet.png"} < names
    # The strict mapping beside --mapping is scored too, with a contact sheet of its errors
    # (the strict errors include the lenient ones, and a tiny model makes some).
    assert "errors-clothing-small-strict.png" in names
    assert names <= {
        "report.json",
        "report.md",
        "confusion.png",
        "contact_sheet.png",
        "errors-clothing-small.png",
        "errors-clothing-small-strict.png",
    }
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert list(report["mappings"]) == ["clothing-small", "clothing-small-strict"]
    assert "mapping clothing-small-strict v1: accuracy" in first.stdout
    with Image.open(report_dir / "contact_sheet.png") as sheet:
        assert sheet.height >= 10 * 84 and sheet.width > 2 * 2 * 84
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| mappable accuracy |" in markdown and "## Confusion" in markdown
    run_id = re.search(r"MLflow run (\w+)", first.stdout)
    assert run_id is not None
    registry = photo_env.services.registry(experiment=EXPERIMENT)
    params = registry.run_params(run_id.group(1))
    assert params["mapping.sha256"] == report["mapping"]["sha256"]
    assert params["preprocessing"] == "grabcut"
    listed = runner.invoke(cli.app, ["experiment", "list", "--output", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "grabcut" in listed.stdout and "colour" in listed.stdout


def test_a_missing_model_is_a_one_line_error(photo_env: PhotoHome, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        [
            "experiment",
            "real-world",
            str(photo_env.folder),
            "--mapping",
            str(MAPPING),
            "--model",
            "no-such-model@champion",
            "--output",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: model 'no-such-model@champion'"), line
    assert not list(tmp_path.iterdir())
