"""Settings: defaults, YAML, environment precedence, provenance and error messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fmnist.config import OFFICIAL_MIRRORS, LoadedSettings, env_var_name, load_settings
from fmnist.errors import ConfigError


def write_yaml(tmp_path: Path, text: str, name: str = "fmnist.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sources_of(loaded: LoadedSettings) -> dict[str, str]:
    return {row.key: row.source for row in loaded.explain()}


def test_defaults(tmp_path: Path) -> None:
    loaded = load_settings()
    settings = loaded.settings

    assert settings.profile == "local"
    assert settings.home == tmp_path / "home"  # from the isolation fixture's FMNIST_HOME
    assert settings.cache_dir == tmp_path / "cache" / "fmnist"  # from XDG_CACHE_HOME
    assert settings.data_dir is None
    assert settings.debian_data_dir == Path("/usr/share/datasets/fashion-mnist")
    assert settings.data.mirrors == list(OFFICIAL_MIRRORS)
    assert settings.data.val_fraction == 0.1
    assert settings.data.snapshot_format == "parquet"
    assert settings.validation.max_class_imbalance == 1.5
    assert settings.resolved_lake_url == str(tmp_path / "home" / "lake")

    sources = sources_of(loaded)
    assert sources["home"] == "env FMNIST_HOME"
    assert sources["data.val_fraction"] == "default"
    assert sources["gates.min_accuracy"] == "default"


def test_cache_dir_falls_back_to_home_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert load_settings().settings.cache_dir == Path.home() / ".cache" / "fmnist"


def test_yaml_overrides_defaults_with_file_line_provenance(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "# comment line\n"
        "data:\n"
        "  val_fraction: 0.2\n"
        "  mirrors:\n"
        "    - http://example.invalid/a/\n"
        "validation:\n"
        "  max_blank_fraction: 0.01\n",
    )
    loaded = load_settings(path)

    assert loaded.settings.data.val_fraction == 0.2
    assert loaded.settings.data.mirrors == ["http://example.invalid/a/"]
    assert loaded.settings.validation.max_blank_fraction == 0.01
    sources = sources_of(loaded)
    assert sources["data.val_fraction"] == f"{path}:3"
    assert sources["data.mirrors"] == f"{path}:4"
    assert sources["validation.max_blank_fraction"] == f"{path}:7"
    assert sources["data.split_seed"] == "default"


def test_env_overrides_yaml_and_nested_values_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(tmp_path, "data:\n  val_fraction: 0.2\n  split_seed: 7\n")
    monkeypatch.setenv("FMNIST_DATA__VAL_FRACTION", "0.3")

    loaded = load_settings(path)

    assert loaded.settings.data.val_fraction == 0.3
    assert loaded.settings.data.split_seed == 7  # the YAML sibling survives the env override
    sources = sources_of(loaded)
    assert sources["data.val_fraction"] == "env FMNIST_DATA__VAL_FRACTION"
    assert sources["data.split_seed"] == f"{path}:3"


def test_env_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA__MIRRORS", '["http://127.0.0.1:1/", "http://127.0.0.1:2/"]')
    loaded = load_settings()
    assert loaded.settings.data.mirrors == ["http://127.0.0.1:1/", "http://127.0.0.1:2/"]
    assert sources_of(loaded)["data.mirrors"] == "env FMNIST_DATA__MIRRORS"


def test_config_file_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_yaml(tmp_path, "data:\n  split_seed: 11\n")
    monkeypatch.setenv("FMNIST_CONFIG", str(path))
    loaded = load_settings()
    assert loaded.settings.data.split_seed == 11
    assert sources_of(loaded)["data.split_seed"] == f"{path}:2"


def test_explicit_file_wins_over_config_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMNIST_CONFIG", str(write_yaml(tmp_path, "data:\n  split_seed: 1\n")))
    explicit = write_yaml(tmp_path, "data:\n  split_seed: 2\n", name="explicit.yaml")
    assert load_settings(explicit).settings.data.split_seed == 2


def test_empty_yaml_gives_defaults(tmp_path: Path) -> None:
    loaded = load_settings(write_yaml(tmp_path, "# nothing set\n"))
    assert loaded.settings.data.val_fraction == 0.1
    assert "default" in sources_of(loaded).values()


def test_unknown_yaml_key_names_key_and_line(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "data:\n  val_fraction: 0.2\n  shuffle_buffer: 10\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "'data.shuffle_buffer'" in message
    assert "unknown setting" in message
    assert f"{path}:3" in message


def test_invalid_yaml_value_names_key_value_and_line(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "validation:\n  max_class_imbalance: 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "'validation.max_class_imbalance'" in message
    assert "(got 0.5)" in message
    assert f"[from {path}:2]" in message


def test_invalid_env_value_names_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA__VAL_FRACTION", "0.9")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "setting 'data.val_fraction'" in message
    assert "less than 0.5" in message
    assert "[from env FMNIST_DATA__VAL_FRACTION]" in message


def test_unparsable_env_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA__MIRRORS", "not-json")
    with pytest.raises(ConfigError, match=r"invalid FMNIST_\* environment variable"):
        load_settings()


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "data:\n  val_fraction: 0.2\n  mirrors: [a, b\nprofile: local\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", str(info.value))


def test_non_mapping_yaml(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "- a\n- b\n")
    expected = f"{path}:1: the config file must be a mapping"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(path)


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: cannot read config file")):
        load_settings(path)


def test_gcp_profile_needs_a_bucket_for_its_lake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_PROFILE", "gcp")
    settings = load_settings().settings  # loading works: `fmnist config show` must explain it
    with pytest.raises(ConfigError, match=r"profile 'gcp' needs gcp\.bucket"):
        _ = settings.resolved_lake_url


def test_gcp_profile_with_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_PROFILE", "gcp")
    monkeypatch.setenv("FMNIST_GCP__BUCKET", "my-bucket")
    settings = load_settings().settings
    assert settings.resolved_lake_url == "gs://my-bucket/lake"


def test_agnostic_profile_needs_an_object_store(tmp_path: Path) -> None:
    settings = load_settings(write_yaml(tmp_path, "profile: agnostic\n")).settings
    with pytest.raises(ConfigError, match=r"profile 'agnostic' needs agnostic\.object_store_url"):
        _ = settings.resolved_lake_url


def test_agnostic_profile_with_object_store(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "profile: agnostic\nagnostic:\n  object_store_url: s3://fmnist/\n")
    assert load_settings(path).settings.resolved_lake_url == "s3://fmnist/lake"


def test_explicit_lake_url_wins_over_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_PROFILE", "gcp")
    monkeypatch.setenv("FMNIST_LAKE_URL", "memory://lake")
    assert load_settings().settings.resolved_lake_url == "memory://lake"


def test_tracking_defaults_live_under_home(tmp_path: Path) -> None:
    settings = load_settings().settings
    home = (tmp_path / "home").resolve()
    assert settings.resolved_tracking_uri == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    assert settings.resolved_artifact_root == (home / "mlflow" / "artifacts").as_uri()


def test_tracking_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_TRACKING__TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("FMNIST_TRACKING__ARTIFACT_ROOT", "gs://bucket/artifacts")
    settings = load_settings().settings
    assert settings.resolved_tracking_uri == "http://mlflow:5000"
    assert settings.resolved_artifact_root == "gs://bucket/artifacts"


def test_env_var_name() -> None:
    assert env_var_name("data.val_fraction") == "FMNIST_DATA__VAL_FRACTION"
    assert env_var_name("profile") == "FMNIST_PROFILE"


def test_explain_lists_every_leaf_once() -> None:
    keys = [row.key for row in load_settings().explain()]
    assert len(keys) == len(set(keys))
    assert {"profile", "data.mirrors", "validation.blank_range", "gcp.bucket"} <= set(keys)
    assert not any(key in {"data", "validation", "gcp"} for key in keys)
