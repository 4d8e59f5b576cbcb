"""The versioned photo-class mapping: the repository's file and every kind of mistake in one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import CLASS_NAMES, cli
from fmnist.errors import FmnistError
from fmnist.realworld.mapping import MappingError, load_mapping, parse_mapping
from fmnist.realworld.photos import scan_folder

REPO = Path(__file__).resolve().parents[3]
MAPPING = REPO / "config/real-world/clothing-small.yaml"

GOOD = """version: 3
name: tiny
classes:
  pants: [Trouser]
  shoes: [Sandal, Sneaker, Ankle boot]
  hat: []
"""


def test_the_repository_mapping_loads() -> None:
    mapping = load_mapping(MAPPING)
    assert mapping.name == "clothing-small" and mapping.version == 1
    assert mapping.sha256 == hashlib.sha256(MAPPING.read_bytes()).hexdigest()
    assert set(mapping.photo_classes) == {
        "dress",
        "hat",
        "longsleeve",
        "outwear",
        "pants",
        "shirt",
        "shoes",
        "shorts",
        "skirt",
        "t-shirt",
    }
    assert mapping.target_names("shoes") == ["Sandal", "Sneaker", "Ankle boot"]
    assert mapping.target_names("pants") == ["Trouser"]
    assert [c for c in mapping.photo_classes if not mapping.is_mappable(c)] == [
        "hat",
        "shorts",
        "skirt",
    ]
    assert mapping.source is not None and mapping.source.download is not None
    assert "alexeygrigorev/clothing-dataset-small" in mapping.source.download


def test_targets_are_class_ids() -> None:
    mapping = parse_mapping(GOOD, Path("m.yaml"))
    assert mapping.targets("shoes") == frozenset(
        {CLASS_NAMES.index("Sandal"), CLASS_NAMES.index("Sneaker"), CLASS_NAMES.index("Ankle boot")}
    )
    assert mapping.targets("hat") == frozenset()
    with pytest.raises(MappingError, match=r"photo class 'socks' is not in mapping m\.yaml"):
        mapping.targets("socks")


def test_unknown_fashion_mnist_class_names_the_class_the_file_and_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("Sneaker,", "Sneakers,"), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:5: unknown Fashion-MNIST class 'Sneakers'")
    assert "photo class 'shoes'" in message
    assert "did you mean 'Sneaker'?" in message
    assert isinstance(caught.value, FmnistError) and caught.value.exit_code == 2


def test_an_item_on_its_own_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "block.yaml"
    path.write_text(
        "version: 1\nname: x\nclasses:\n  shoes:\n    - Sandal\n    - Boot\n", encoding="utf-8"
    )
    with pytest.raises(MappingError, match=r"block.yaml:6: unknown Fashion-MNIST class 'Boot'"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nname: x\nclasses: {a: [Bag]}\nextra: 1\n", r"m.yaml:4: extra: unknown key"),
        ("name: x\nclasses: {a: [Bag]}\n", r"m.yaml:1: version: Field required"),
        ("version: 1\nname: x\nclasses:\n  a: Bag\n", r"m.yaml:4: classes.a: Input should be"),
        ("version: 1\nname: x\nclasses:\n  a: [Bag, Bag]\n", "lists a Fashion-MNIST class twice"),
        ("version: 1\nname: x\nclasses: {}\n", r"classes: Dictionary should have at least 1"),
        ("- a\n- b\n", r"m.yaml:1: a mapping file is a YAML mapping"),
        ("version: 1\nclasses: [\n", r"m.yaml:\d+: "),
    ],
)
def test_malformed_mappings_are_precise_errors(text: str, expected: str) -> None:
    with pytest.raises(MappingError, match=expected):
        parse_mapping(text, Path("m.yaml"))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read mapping file"):
        load_mapping(tmp_path / "absent.yaml")


def test_a_folder_the_mapping_does_not_list_is_an_error(tmp_path: Path) -> None:
    mapping = parse_mapping(GOOD, Path("tiny.yaml"))
    for name in ("pants", "socks"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.jpg").write_bytes(b"x")
    with pytest.raises(MappingError) as caught:
        scan_folder(tmp_path, mapping)
    assert f"folder {tmp_path / 'socks'} is photo class 'socks'" in str(caught.value)
    assert "mapping tiny.yaml does not list" in str(caught.value)


def test_the_cli_reports_a_bad_mapping_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("[Trouser]", "[Trousers]"), encoding="utf-8")
    result = CliRunner().invoke(
        cli.app, ["experiment", "real-world", str(tmp_path), "--mapping", str(path)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "unknown Fashion-MNIST class 'Trousers'" in lines[0]
    assert f"{path}:4" in lines[0]
