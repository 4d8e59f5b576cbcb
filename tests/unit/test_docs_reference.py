"""The generated references of the documentation site (API from OpenAPI, CLI from Typer).

``docs/reference/api.md``, ``openapi.json`` and ``cli.md`` are written by
``python scripts/gen_reference.py``; they are regenerated here in memory and must equal the
committed files, so a changed route, schema, command or option fails until the pages are
regenerated. The site hook that rewrites links leaving ``docs/`` is tested here too.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(path: Path) -> ModuleType:
    name = f"_docs_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """``scripts/gen_reference.py``."""
    return _load(REPO / "scripts" / "gen_reference.py")


@pytest.fixture(scope="module")
def pages(gen: ModuleType) -> dict[Path, str]:
    """The reference files as the code renders them now."""
    rendered: dict[Path, str] = gen.render_all()
    return rendered


def test_committed_references_are_current(gen: ModuleType, pages: dict[Path, str]) -> None:
    stale = [path.relative_to(REPO).as_posix() for path in gen.stale(pages)]
    assert not stale, f"stale: {stale}; regenerate with: python scripts/gen_reference.py"


def test_references_are_reproducible(
    gen: ModuleType, pages: dict[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another home, FMNIST_* variables set: the same bytes, and nothing of this machine."""
    monkeypatch.setenv("FMNIST_SERVING__MAX_BATCH", "7")
    monkeypatch.setenv("FMNIST_HOME", "/somewhere/else")
    assert gen.render_all() == pages
    for text in pages.values():
        assert str(REPO) not in text and "/tmp/" not in text and "fmnist-ref-" not in text


def test_every_route_and_command_is_documented(gen: ModuleType, pages: dict[Path, str]) -> None:
    schema = json.loads(pages[gen.OPENAPI_JSON])
    api = pages[gen.API_MD]
    for path, operations in schema["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in api
    assert "/v1/predict" in schema["paths"] and "### Problem" in api

    import typer

    from fmnist.cli import app

    cli = pages[gen.CLI_MD]
    for _, ctx in gen._commands(typer.main.get_command(app), "fmnist"):
        assert f"`{ctx.command_path}`" in cli
    assert "`fmnist predict batch`" in cli and "--batch-size" in cli


def test_markdown_cells_are_escaped(gen: ModuleType) -> None:
    assert gen.cell("a | b\n<path> *x*") == r"a \| b &lt;path> \*x\*"
    assert gen.cell("keep `a|b <c>` as code") == "keep `a|b <c>` as code"
    assert gen.slug("POST /v1/predict/batch") == "post-v1predictbatch"
    assert gen.type_of({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == "integer or null"
    assert gen.type_of({"$ref": "#/components/schemas/Problem"}) == "[Problem](#problem)"


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    """``scripts/mkdocs_hooks.py``."""
    return _load(REPO / "scripts" / "mkdocs_hooks.py")


def test_links_leaving_docs_are_found(hooks: ModuleType) -> None:
    target = hooks.repo_target
    assert target("data.md", "../config/example.yaml") == ("config/example.yaml", "")
    assert target("reference/api.md", "../../README.md#quick-start") == ("README.md", "quick-start")
    for inside in ("lifecycle.md#measured", "#anchor", "https://example.org/x", "/abs"):
        assert target("data.md", inside) is None
    assert target("reference/cli.md", "../architecture.md") is None


def test_links_leaving_docs_become_paths_or_forge_links(hooks: ModuleType) -> None:
    import markdown  # type: ignore[import-untyped]

    hook = hooks.RepoLinkHook()
    md = markdown.Markdown(extensions=[hooks._Extension(hook)])
    hook.page_src = "monitoring.md"
    source = "See [the rules](../monitoring/README.md), [`x.yaml`](../x.yaml), [a](data.md)."
    html = md.convert(source)
    assert '<span class="repo-path">the rules (<code>monitoring/README.md</code>)</span>' in html
    assert '<span class="repo-path"><code>x.yaml</code></span>' in html
    assert '<a href="data.md">a</a>' in html

    hook.repo_url, hook.repo_root = "https://forge.example/org/fmnist/", REPO
    html = md.reset().convert("[m](../monitoring/) and [c](../config/example.yaml#L3)")
    assert 'href="https://forge.example/org/fmnist/tree/main/monitoring"' in html
    assert 'href="https://forge.example/org/fmnist/blob/main/config/example.yaml#L3"' in html


def test_the_vendored_mermaid_is_served_by_the_site(hooks: ModuleType, tmp_path: Path) -> None:
    docs, site = tmp_path / "docs", tmp_path / "site"
    docs.mkdir()
    config = {"docs_dir": str(docs), "site_dir": str(site), "markdown_extensions": []}
    config["extra_javascript"] = []
    hooks.on_config(config)
    hooks.on_post_build(config)
    assert config["extra_javascript"] == []  # not fetched: Material's CDN default
    assert not (site / hooks.MERMAID_SITE_PATH).exists()

    vendored = tmp_path / "build" / "mermaid" / "mermaid.min.js"
    vendored.parent.mkdir(parents=True)
    vendored.write_text("window.mermaid = {};", encoding="utf-8")
    config["extra_javascript"] = []
    hooks.on_config(config)
    hooks.on_post_build(config)
    assert config["extra_javascript"] == [hooks.MERMAID_SITE_PATH]
    assert (site / hooks.MERMAID_SITE_PATH).read_text(encoding="utf-8") == "window.mermaid = {};"
