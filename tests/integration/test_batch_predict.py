"""``fmnist predict batch`` on every input type, with a tiny model trained and registered once.

The module fixture trains the ``tiny`` preset on a real subset and registers it as champion
(about 15 s); the tests then run the batch job through the library and the CLI.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from data_paths import PHOTOS_VALIDATION, require_dir
from fmnist.batch.errors import BatchInputError, BatchJobError
from fmnist.batch.model import BatchModel, load_onnx_model
from fmnist.batch.readers import open_input
from fmnist.batch.runner import BatchResult, run_batch
from fmnist.batch.writer import output_schema, parts_dir
from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.idx import parse_idx, read_raw, write_idx
from fmnist.data.sources import RawDataset
from fmnist.errors import FmnistError
from fmnist.evaluation.unknown import decide, decide_arrays
from fmnist.imaging.preprocess import preprocess_bytes
from fmnist.registry.mlflow_registry import CHAMPION
from fmnist.registry.onnx_runtime import OnnxClassifier
from tracking_home import register_tiny_models

PHOTOS = PHOTOS_VALIDATION
MIN_CONFIDENCE = 0.5


@dataclass
class Registered:
    """The registered tiny model and where its data lives."""

    settings: Settings
    env: dict[str, str]
    onnx: Path
    version: int
    snapshot_test: Path


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> Registered:
    """Snapshot a real subset, train the tiny preset, register it as champion."""
    home = tmp_path_factory.mktemp("batch")
    tiny = register_tiny_models(home, raw_subset, mlflow_template_db)
    outcome = tiny.outcomes[0]
    assert outcome.promoted and outcome.version is not None
    folder = build_services(tiny.settings).registry().download(CHAMPION, home / "champion")
    snapshot_test = home / "lake" / "snapshots" / tiny.snapshot_id / "test.parquet"
    return Registered(
        tiny.settings, tiny.env, folder / "model.onnx", outcome.version.version, snapshot_test
    )


@pytest.fixture(scope="module")
def model(registered: Registered) -> BatchModel:
    """The champion's ONNX file loaded for the library-level tests (1 thread)."""
    return load_onnx_model(registered.onnx, threads=1, batch_size=256)


@pytest.fixture(scope="module")
def test_images(fmnist_data_dir: Path) -> np.ndarray:
    """The 10,000 real test images."""
    raw = read_raw(fmnist_data_dir / "t10k-images-idx3-ubyte.gz")
    return parse_idx(raw.content)


@pytest.fixture
def registry_env(registered: Registered, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the settings at the module's registry."""
    for key, value in registered.env.items():
        monkeypatch.setenv(key, value)


def _run(
    path: Path,
    output: Path,
    model: BatchModel,
    *,
    key: str | None = None,
    column: str | None = None,
    id_column: str | None = None,
    **kwargs: Any,
) -> BatchResult:
    with open_input(
        path, key=key, column=column, id_column=id_column, preprocess=_preprocess
    ) as source:
        return run_batch(source, output, model, min_confidence=MIN_CONFIDENCE, **kwargs)


def _preprocess(data: bytes) -> tuple[np.ndarray, float]:
    result = preprocess_bytes(data, max_pixels=40_000_000)
    return result.pixels, result.foreground_fraction


def _check_against_classifier(table: pa.Table, images: np.ndarray, onnx: Path) -> None:
    """Predictions equal OnnxClassifier's; probabilities sum to 1; unknown rows have no class."""
    classifier = OnnxClassifier(onnx)
    expected = classifier.predict_proba(images)
    probabilities = np.asarray(table.column("probabilities").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    class_id = table.column("class_id").to_numpy(zero_copy_only=False)
    known = ~np.isnan(class_id)
    assert known.mean() > 0.2  # enough rows with a class to compare
    np.testing.assert_array_equal(class_id[known], expected.argmax(axis=1)[known])
    labels = table.column("label").to_pylist()
    assert {labels[i] for i in np.flatnonzero(~known)} <= {"unknown"}
    assert labels[int(np.flatnonzero(known)[0])] in classifier.class_names
    confidence = table.column("confidence").to_numpy()
    np.testing.assert_allclose(confidence, expected.max(axis=1), atol=1e-6)
    assert table.column("error").null_count == len(table)


# ----------------------------------------------------------------------------- input types


def test_idx_gz_through_the_cli_with_the_registered_champion(
    registered: Registered,
    registry_env: None,
    fmnist_data_dir: Path,
    tmp_path: Path,
    test_images: np.ndarray,
) -> None:
    output = tmp_path / "idx.parquet"
    source = fmnist_data_dir / "t10k-images-idx3-ubyte.gz"
    result = CliRunner().invoke(app, ["predict", "batch", str(source), str(output)])
    assert result.exit_code == 0, result.output
    assert "10,000 rows" in result.output and "0 errors" in result.output
    assert f"version {registered.version}" in result.output
    assert not parts_dir(output).exists()

    table = pq.read_table(output)
    assert table.schema.remove_metadata() == output_schema(10)
    assert table.column("input_ref").to_pylist()[:3] == ["0", "1", "2"]
    assert set(table.column("model_version").to_pylist()) == {str(registered.version)}
    assert set(table.column("model_name").to_pylist()) == {"fmnist-classifier"}
    _check_against_classifier(table, test_images, registered.onnx)
    assert pq.ParquetFile(output).metadata.num_row_groups == 1

    # Every row is also in the prediction log (input kind batch), with the written answer.
    log = build_services(registered.settings).prediction_log
    records = [r for r in log.window(last=20_000) if r.input_kind == "batch"]
    assert len(records) == 10_000
    by_row = {int(r.request_id.rsplit(":", 1)[1]): r for r in records}
    assert by_row[0].predicted_class == table.column("label").to_pylist()[0]
    assert np.frombuffer(by_row[7].pixels, np.uint8).reshape(28, 28).tolist() == (
        test_images[7].tolist()
    )


def test_plain_idx_npy_and_npz_agree(
    model: BatchModel, registered: Registered, tmp_path: Path, test_images: np.ndarray
) -> None:
    images = test_images[:1500]
    write_idx(images, tmp_path / "images.idx")
    np.save(tmp_path / "flat_float.npy", images.reshape(-1, 784).astype(np.float64))
    np.savez(tmp_path / "arrays.npz", labels=np.zeros(3), images=images)
    np.savez_compressed(tmp_path / "first.npz", images=images)

    tables = {}
    for name, path, options in (
        ("idx", tmp_path / "images.idx", {}),
        ("npy", tmp_path / "flat_float.npy", {}),
        ("npz", tmp_path / "arrays.npz", {"key": "images"}),
        ("npz-first", tmp_path / "first.npz", {}),
    ):
        result = _run(path, tmp_path / f"{name}.parquet", model, shard_size=400, **options)
        assert result.complete and result.rows == 1500, name
        tables[name] = pq.read_table(tmp_path / f"{name}.parquet")
        assert pq.ParquetFile(tmp_path / f"{name}.parquet").metadata.num_row_groups == 4
    _check_against_classifier(tables["idx"], images, registered.onnx)
    for name in ("npy", "npz", "npz-first"):
        assert (
            tables[name]
            .drop_columns(["model_name"])
            .equals(tables["idx"].drop_columns(["model_name"]))
        ), name


def test_parquet_snapshot_file_with_id_column(
    model: BatchModel, registered: Registered, tmp_path: Path
) -> None:
    output = tmp_path / "snap.parquet"
    result = _run(registered.snapshot_test, output, model, id_column="source_index")
    snapshot = pq.read_table(registered.snapshot_test)
    assert result.rows == len(snapshot)
    table = pq.read_table(output)
    assert table.column("input_ref").to_pylist() == [
        str(i) for i in snapshot.column("source_index").to_pylist()
    ]
    images = np.frombuffer(b"".join(snapshot.column("image").to_pylist()), dtype=np.uint8).reshape(
        -1, 28, 28
    )
    _check_against_classifier(table, images, registered.onnx)


def test_parquet_list_column(model: BatchModel, tmp_path: Path, test_images: np.ndarray) -> None:
    images = test_images[:300]
    path = tmp_path / "lists.parquet"
    pq.write_table(
        pa.table(
            {
                "name": [f"img-{i}" for i in range(300)],
                "pixels": pa.array(images.reshape(300, 784).tolist(), type=pa.list_(pa.uint8())),
            }
        ),
        path,
        row_group_size=128,
    )
    output = tmp_path / "lists-out.parquet"
    _run(path, output, model, id_column="name", shard_size=100)
    table = pq.read_table(output)
    assert table.column("input_ref").to_pylist()[:2] == ["img-0", "img-1"]
    reference = tmp_path / "ref.parquet"
    np.save(tmp_path / "ref.npy", images)
    _run(tmp_path / "ref.npy", reference, model)
    expected = pq.read_table(reference)
    for column in ("class_id", "probabilities", "confidence", "label"):
        assert table.column(column).equals(expected.column(column)), column


def test_photo_folder_with_a_corrupt_file(registered: Registered, tmp_path: Path) -> None:
    require_dir(PHOTOS)
    folder = tmp_path / "photos"
    for cls in ("dress", "pants", "shoes", "hat"):
        (folder / cls).mkdir(parents=True)
        first = sorted((PHOTOS / cls).glob("*.jpg"))[0]
        shutil.copy(first, folder / cls / first.name)
    (folder / "pants" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (folder / "notes.txt").write_text("ignored: not an image")
    output = tmp_path / "photos.parquet"

    runner = CliRunner()
    args = ["predict", "batch", str(folder), str(output), "--onnx", str(registered.onnx)]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "5 rows" in result.output and "1 errors" in result.output

    table = pq.read_table(output)
    refs = table.column("input_ref").to_pylist()
    assert refs == sorted(refs) and "pants/broken.jpg" in refs
    bad = refs.index("pants/broken.jpg")
    row = table.slice(bad, 1).to_pylist()[0]
    assert row["error"] and row["class_id"] is None
    assert row["probabilities"] == [None] * 10
    assert row["label"] is None and row["confidence"] is None
    classifier = OnnxClassifier(registered.onnx)
    for i, ref in enumerate(refs):
        if i == bad:
            continue
        record = table.slice(i, 1).to_pylist()[0]
        assert record["error"] is None
        assert abs(sum(record["probabilities"]) - 1) < 1e-5
        pixels = preprocess_bytes((folder / ref).read_bytes()).pixels
        expected = classifier.predict_proba(pixels[None])[0]
        np.testing.assert_allclose(record["probabilities"], expected, atol=1e-6)
        if record["class_id"] is not None:
            assert record["class_id"] == int(expected.argmax())

    strict = runner.invoke(app, [*args, "--fail-on-error", "--overwrite", "--no-progress"])
    assert strict.exit_code == 2, strict.output
    assert "broken.jpg" in strict.output and "Traceback" not in strict.output


def test_decide_arrays_matches_decide(model: BatchModel, test_images: np.ndarray) -> None:
    logits, probabilities = model.classifier.run(test_images[:2000])
    logits[5] = np.nan
    probabilities[5] = np.nan
    rng = np.random.default_rng(0)
    foreground = rng.uniform(0, 0.01, size=2000)
    for threshold, fraction in ((model.energy_threshold, None), (-1.0, foreground), (None, None)):
        fast = decide_arrays(
            probabilities,
            logits,
            temperature=model.temperature,
            energy_threshold=threshold,
            min_confidence=MIN_CONFIDENCE,
            foreground_fraction=fraction,
        )
        slow = decide(
            probabilities,
            logits,
            temperature=model.temperature,
            energy_threshold=threshold,
            min_confidence=MIN_CONFIDENCE,
            foreground_fraction=fraction,
        )
        assert fast.class_id.tolist() == [-1 if v.class_id is None else v.class_id for v in slow]
        np.testing.assert_array_equal(
            fast.confidence, np.array([v.confidence for v in slow], dtype=np.float32)
        )


# ----------------------------------------------------------------------- resume and refusal


def test_interrupted_job_resumes_with_the_remaining_shards_only(
    model: BatchModel, tmp_path: Path, test_images: np.ndarray
) -> None:
    np.save(tmp_path / "in.npy", test_images[:5000])
    baseline = tmp_path / "baseline.parquet"
    _run(tmp_path / "in.npy", baseline, model, shard_size=1000)

    output = tmp_path / "out.parquet"
    first = _run(tmp_path / "in.npy", output, model, shard_size=1000, max_shards=2)
    assert not first.complete and first.computed_shards == 2
    assert not output.exists()
    parts = parts_dir(output)
    assert sorted(p.name for p in parts.iterdir()) == [
        "manifest.json",
        "part-00000.parquet",
        "part-00001.parquet",
    ]

    def crash(shard: int) -> None:
        raise RuntimeError(f"simulated crash after shard {shard}")

    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "in.npy", output, model, shard_size=1000, on_shard=crash)
    assert (parts / "part-00002.parquet").is_file()  # the shard written before the crash

    computed: list[int] = []
    final = _run(tmp_path / "in.npy", output, model, shard_size=1000, on_shard=computed.append)
    assert final.complete and final.skipped_shards >= 3
    assert computed == list(range(final.skipped_shards, 5))
    assert final.rows == 5000 and final.computed_rows == 1000 * len(computed)
    assert not parts.exists()
    assert pq.read_table(output).equals(pq.read_table(baseline))

    again: list[int] = []
    rerun = _run(tmp_path / "in.npy", output, model, shard_size=1000, on_shard=again.append)
    assert rerun.complete and again == [] and rerun.computed_rows == 0


def test_other_job_is_refused_unless_overwrite(
    model: BatchModel, registered: Registered, tmp_path: Path, test_images: np.ndarray
) -> None:
    np.save(tmp_path / "in.npy", test_images[:600])
    output = tmp_path / "out.parquet"
    _run(tmp_path / "in.npy", output, model, shard_size=200, max_shards=1)

    other_model = load_onnx_model(registered.onnx, version="other", threads=1)
    with pytest.raises(BatchJobError, match=r"another job.*model \(version 'sha256:.*'other'"):
        _run(tmp_path / "in.npy", output, other_model, shard_size=200)
    with pytest.raises(BatchJobError, match=r"shard_size \(200 -> 300\)"):
        _run(tmp_path / "in.npy", output, model, shard_size=300)
    np.save(tmp_path / "in.npy", test_images[:700])  # same path, new content
    with pytest.raises(BatchJobError, match=r"input \(.*size"):
        _run(tmp_path / "in.npy", output, model, shard_size=200)

    done = _run(tmp_path / "in.npy", output, model, shard_size=200, overwrite=True)
    assert done.complete and done.rows == 700
    with pytest.raises(BatchJobError, match="exists from another job"):
        _run(tmp_path / "in.npy", output, other_model, shard_size=200)
    replaced = _run(tmp_path / "in.npy", output, other_model, shard_size=200, overwrite=True)
    assert replaced.complete
    assert set(pq.read_table(output).column("model_version").to_pylist()) == {"other"}

    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"x": [1]}), foreign)
    with pytest.raises(BatchJobError, match="not the output of a batch job"):
        _run(tmp_path / "in.npy", foreign, model)


def test_cli_interrupt_keeps_finished_shards_and_rerun_resumes(
    registered: Registered,
    tmp_path: Path,
    test_images: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fmnist.batch.runner as batch_module

    np.save(tmp_path / "in.npy", test_images[:900])
    output = tmp_path / "out.parquet"
    args = [
        "predict",
        "batch",
        str(tmp_path / "in.npy"),
        str(output),
        "--onnx",
        str(registered.onnx),
    ]
    args += ["--shard-size", "300", "--no-progress"]
    real_run = batch_module.run_batch

    def interrupted(*a: Any, **kw: Any) -> BatchResult:
        real_run(*a, **kw, max_shards=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_module, "run_batch", interrupted)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    assert "interrupted; 1 of 3 shards are kept in" in result.output
    monkeypatch.setattr(batch_module, "run_batch", real_run)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "900 rows" in result.output and "1 of 3 shards from an earlier run" in result.output


def test_float_pixels_in_unit_range_are_warned_about(model: BatchModel, tmp_path: Path) -> None:
    np.save(tmp_path / "unit.npy", np.full((4, 28, 28), 0.5, dtype=np.float32))
    result = _run(tmp_path / "unit.npy", tmp_path / "o.parquet", model)
    assert result.complete and "multiply by 255" in result.warnings[0]


# ------------------------------------------------------------------------------ bad input


def _bad_inputs(tmp: Path, fmnist_data_dir: Path, images: np.ndarray) -> list[tuple[Path, str]]:
    cases: list[tuple[Path, str]] = []
    cases.append((fmnist_data_dir / "t10k-labels-idx1-ubyte.gz", "1-D IDX array"))
    truncated = tmp / "truncated.idx.gz"
    good = gzip.decompress((fmnist_data_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    truncated.write_bytes(gzip.compress(good[:5000]))
    cases.append((truncated, "truncated"))
    np.save(tmp / "shape.npy", np.zeros((4, 27, 27), dtype=np.uint8))
    cases.append((tmp / "shape.npy", "expected images shaped"))
    floats = images[:10].astype(np.float32)
    floats[7, 3, 3] = 300.0
    np.save(tmp / "range.npy", floats)
    cases.append((tmp / "range.npy", "row 7: pixel value 300"))
    pq.write_table(pa.table({"a": [1, 2]}), tmp / "noimage.parquet")
    cases.append((tmp / "noimage.parquet", "no image column"))
    lists = images[:5].reshape(5, 784).tolist()
    lists[3] = lists[3][:-1]
    pq.write_table(pa.table({"px": pa.array(lists, type=pa.list_(pa.uint8()))}), tmp / "l.parquet")
    cases.append((tmp / "l.parquet", "row 3: the image has 783 values"))
    (tmp / "notes.txt").write_text("hello")
    cases.append((tmp / "notes.txt", "unrecognised file"))
    cases.append((tmp / "missing.npy", "no such file"))
    return cases


def test_bad_inputs_fail_with_one_line_naming_the_file(
    registered: Registered, fmnist_data_dir: Path, tmp_path: Path, test_images: np.ndarray
) -> None:
    runner = CliRunner()
    onnx = ["--onnx", str(registered.onnx), "--no-progress"]
    for path, message in _bad_inputs(tmp_path, fmnist_data_dir, test_images):
        result = runner.invoke(app, ["predict", "batch", str(path), str(tmp_path / "o.pq"), *onnx])
        assert result.exit_code == 2, (path, result.output)
        assert message in result.output and str(path) in result.output, result.output
        assert "Traceback" not in result.output
        assert result.output.count("error:") == 1
        assert not parts_dir(tmp_path / "o.pq").exists()  # nothing to resume: no trace left
    np.savez(tmp_path / "a.npz", images=test_images[:3])
    for extra, message in (
        (["--key", "nope"], "no array 'nope' in the archive (it holds: images)"),
        (["--column", "x"], "--column applies to parquet input, not npz"),
        (["--model", "1"], "--model and --onnx are exclusive"),
        (["--format", "csv"], "--format must be one of"),
    ):
        result = runner.invoke(
            app,
            ["predict", "batch", str(tmp_path / "a.npz"), str(tmp_path / "o.pq"), *onnx, *extra],
        )
        assert result.exit_code == 2 and message in result.output, result.output
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    result = runner.invoke(
        app,
        [
            "predict",
            "batch",
            str(tmp_path / "a.npz"),
            str(tmp_path / "o.pq"),
            "--onnx",
            str(tmp_path / "bad.onnx"),
        ],
    )
    assert result.exit_code == 2 and "not a loadable ONNX model" in result.output


def test_library_errors_are_fmnist_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(BatchInputError, match="--id-column applies to parquet input"):
        open_input(tmp_path / "a.npy", id_column="x")
    assert issubclass(BatchInputError, FmnistError) and issubclass(BatchJobError, FmnistError)


def test_cli_progress_bar_and_unknown_ref(
    registered: Registered, registry_env: None, tmp_path: Path, test_images: np.ndarray
) -> None:
    np.save(tmp_path / "a.npy", test_images[:100])
    result = CliRunner().invoke(
        app, ["predict", "batch", str(tmp_path / "a.npy"), str(tmp_path / "o.parquet")]
    )
    assert result.exit_code == 0 and "100 rows" in result.output, result.output
    missing = CliRunner().invoke(
        app,
        ["predict", "batch", str(tmp_path / "a.npy"), str(tmp_path / "x.parquet"), "--model", "99"],
    )
    assert missing.exit_code == 2 and "no version or alias '99'" in missing.output


def test_batch_path_does_not_import_torch() -> None:
    code = (
        "import sys; import fmnist.cli; "
        "from fmnist.batch import cli, model, readers, runner, writer; "
        "from fmnist.imaging import preprocess; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_batch_job_does_not_import_serving() -> None:
    code = (
        "import sys; from fmnist.batch import cli, model, readers, runner, writer; "
        "loaded = sorted(m for m in sys.modules if m.startswith('fmnist.serving')); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------- Apache Beam


def test_the_beam_engine_matches_the_default_engine_on_the_test_set(
    registered: Registered, tmp_path: Path, fmnist_data_dir: Path
) -> None:
    idx = fmnist_data_dir / "t10k-images-idx3-ubyte.gz"
    outputs = {}
    for engine in ("default", "beam"):
        outputs[engine] = tmp_path / f"{engine}.parquet"
        args = ["predict", "batch", str(idx), str(outputs[engine]), "--onnx", str(registered.onnx)]
        result = CliRunner().invoke(app, [*args, "--engine", engine, "--no-progress"])
        assert result.exit_code == 0, result.output
    default, beam = (pq.read_table(outputs[e]) for e in ("default", "beam"))
    assert beam.schema.remove_metadata().equals(default.schema.remove_metadata())
    assert len(beam) == len(default) == 10_000
    beam = beam.sort_by([("input_ref", "ascending")])
    default = default.sort_by([("input_ref", "ascending")])
    assert beam.column("input_ref").equals(default.column("input_ref"))
    same = np.mean(
        np.asarray(beam.column("label").to_pylist())
        == np.asarray(default.column("label").to_pylist())
    )
    assert same >= 0.999
    np.testing.assert_allclose(
        np.asarray(beam.column("probabilities").to_pylist()),
        np.asarray(default.column("probabilities").to_pylist()),
        atol=1e-6,
    )


def test_the_beam_engine_keeps_unreadable_photos_as_error_rows(
    registered: Registered, tmp_path: Path
) -> None:
    require_dir(PHOTOS)
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(sorted((PHOTOS / "dress").glob("*.jpg"))[0], folder / "good.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    output = tmp_path / "beam.parquet"
    args = ["predict", "batch", str(folder), str(output), "--onnx", str(registered.onnx)]
    result = CliRunner().invoke(app, [*args, "--engine", "beam"])
    assert result.exit_code == 0, result.output
    rows = {r["input_ref"]: r for r in pq.read_table(output).to_pylist()}
    assert set(rows) == {"good.jpg", "broken.jpg"}
    assert rows["broken.jpg"]["error"] and rows["broken.jpg"]["label"] is None
    assert rows["good.jpg"]["error"] is None and rows["good.jpg"]["label"]
