"""MkDocs hook: links from the docs into the rest of the repository.

The pages link to files outside ``docs/`` with relative paths (``../config/example.yaml``,
``../services/README.md``) so that they work where the Markdown is read: on a forge, in an
editor. The site holds only ``docs/``, so ``mkdocs build --strict`` would report those links as
broken. This hook rewrites them in the rendered page (never in the source, never inside code):

* with ``repo_url`` set in ``mkdocs.yml``: to ``{repo_url}/blob/{branch}/{path}`` (``tree`` for
  a folder), the anchor kept; the branch is ``extra.repo_branch`` (default ``main``);
* without it: the link becomes its text followed by the path as code, so the reader still sees
  which file is meant and nothing points nowhere.

Links inside ``docs/`` are left to MkDocs, which validates them (and their anchors).

It also serves Mermaid (the diagrams) from the site itself when ``scripts/vendor-mermaid.sh``
(run by ``make docs``) has fetched it into ``build/mermaid/``: Material then finds ``mermaid``
already defined and loads nothing from a CDN. Without that file the diagrams load Mermaid from
unpkg.com, Material's default.
"""

from __future__ import annotations

import html
import posixpath
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

import markdown  # type: ignore[import-untyped]
from markdown.treeprocessors import Treeprocessor  # type: ignore[import-untyped]

DOCS_PREFIX = "docs/"
STASHED = re.compile(re.escape(markdown.util.STX) + r"wzxhzdk:(\d+)" + re.escape(markdown.util.ETX))
TAG = re.compile(r"<[^>]+>")


def repo_target(page_src: str, href: str) -> tuple[str, str] | None:
    """The repository path and anchor that ``href`` on page ``page_src`` points to, when it
    leaves ``docs/``; None for external, absolute, in-page and in-docs links."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path or href.startswith(("/", "\\")):
        return None
    target = posixpath.normpath(
        posixpath.join(posixpath.dirname(DOCS_PREFIX + page_src), unquote(parts.path))
    )
    if target.startswith(DOCS_PREFIX) or target.startswith("../") or target == "..":
        return None
    return target, parts.fragment


class RepoLinks(Treeprocessor):  # type: ignore[misc]
    """Rewrites the links of one page that leave ``docs/`` (see the module docstring)."""

    def __init__(self, md: markdown.Markdown, hook: RepoLinkHook) -> None:
        """A processor for ``md`` that reads the page and repository from ``hook``."""
        super().__init__(md)
        self.hook = hook

    def run(self, root: ElementTree.Element) -> None:
        """Rewrite every ``<a href>`` and ``<img src>`` that points outside ``docs/``."""
        if self.hook.page_src is None:
            return
        for element in list(root.iter()):
            key = {"a": "href", "img": "src"}.get(str(element.tag))
            found = repo_target(self.hook.page_src, element.get(key, "")) if key else None
            if key is None or found is None:
                continue
            url = self.hook.url(*found)
            if url is not None:
                element.set(key, url)
            elif element.tag == "a":
                self._unlink(element, found[0])

    def _text(self, element: ElementTree.Element) -> str:
        """The visible text of ``element``, with stashed inline HTML (code spans) resolved."""

        def unstash(match: re.Match[str]) -> str:
            block = self.md.htmlStash.rawHtmlBlocks[int(match.group(1))]
            return html.unescape(TAG.sub("", str(block)))

        return STASHED.sub(unstash, "".join(element.itertext())).strip()

    def _unlink(self, link: ElementTree.Element, path: str) -> None:
        """Replace ``link`` by a span with its content, then `` (`path`)`` unless the link's
        text already is the path."""
        text = self._text(link)
        link.tag = "span"
        link.attrib.clear()
        link.set("class", "repo-path")
        if text == path and not list(link):
            link.text = None
            ElementTree.SubElement(link, "code").text = path
        elif text.rstrip("/") != path.rstrip("/"):
            code = ElementTree.SubElement(link, "code")
            code.text = path
            children = list(link)
            before = children[-2] if len(children) > 1 else None
            if before is not None:
                before.tail = (before.tail or "") + " ("
            else:
                link.text = (link.text or "") + " ("
            code.tail = ")"


class RepoLinkHook:
    """Holds the site's repository URL and the page being rendered."""

    def __init__(self) -> None:
        """No repository URL (links become paths) until ``on_config`` reads ``mkdocs.yml``."""
        self.repo_url: str | None = None
        self.branch = "main"
        self.repo_root: Path | None = None
        self.page_src: str | None = None

    def url(self, path: str, anchor: str) -> str | None:
        """The forge URL of ``path`` (a file: ``blob``, a folder: ``tree``), or None."""
        if not self.repo_url:
            return None
        kind = "tree" if self.repo_root is not None and (self.repo_root / path).is_dir() else "blob"
        return f"{self.repo_url.rstrip('/')}/{kind}/{self.branch}/{path}" + (
            f"#{anchor}" if anchor else ""
        )


class _Extension(markdown.Extension):  # type: ignore[misc]
    def __init__(self, hook: RepoLinkHook) -> None:
        super().__init__()
        self.hook = hook

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Markdown's API)
        """Run before MkDocs' own link processor (priority 0) sees the links."""
        md.treeprocessors.register(RepoLinks(md, self.hook), "fmnist_repo_links", 5)


HOOK = RepoLinkHook()


MERMAID_SITE_PATH = "assets/vendor/mermaid.min.js"
"""Where the vendored Mermaid is served from in the site."""


def vendored_mermaid(repo_root: Path) -> Path | None:
    """``build/mermaid/mermaid.min.js`` when ``scripts/vendor-mermaid.sh`` has fetched it."""
    path = repo_root / "build" / "mermaid" / "mermaid.min.js"
    return path if path.is_file() else None


def on_config(config: Any) -> Any:
    """Read ``repo_url`` and ``extra.repo_branch``; add the link rewriter to Markdown; serve
    the vendored Mermaid when there is one."""
    HOOK.repo_url = config.get("repo_url") or None
    HOOK.branch = (config.get("extra") or {}).get("repo_branch", "main")
    HOOK.repo_root = Path(config["docs_dir"]).resolve().parent
    config["markdown_extensions"].append(_Extension(HOOK))
    if vendored_mermaid(HOOK.repo_root) is not None:
        config["extra_javascript"].append(MERMAID_SITE_PATH)
    return config


def on_post_build(config: Any) -> None:
    """Copy the vendored Mermaid into the site (see :func:`on_config`)."""
    source = vendored_mermaid(Path(config["docs_dir"]).resolve().parent)
    if source is not None:
        target = Path(config["site_dir"]) / MERMAID_SITE_PATH
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def on_page_markdown(markdown_text: str, page: Any, **_: Any) -> str:
    """Remember which page is about to be converted (pages are converted one at a time)."""
    HOOK.page_src = page.file.src_uri
    return markdown_text
