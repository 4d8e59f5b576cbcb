"""Generate the package diagram of docs/architecture.md from the code's real imports.

The Mermaid block between the ``<!-- packages:begin -->`` and ``<!-- packages:end -->`` markers
is rewritten from the import graph (grimp, the library import-linter is built on), so the picture
cannot drift from the code: ``python scripts/architecture.py`` rewrites it, ``--check`` exits 1
when the page is stale (a test runs that).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grimp

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
BEGIN, END = "<!-- packages:begin -->", "<!-- packages:end -->"

LAYERS: dict[str, tuple[str, ...]] = {
    "interfaces": ("cli", "__main__", "composition", "asgi", "demo"),
    "application": (
        "retraining",
        "streaming",
        "kubeflow",
        "serving",
        "batch",
        "monitoring",
        "rollout",
        "pipelines",
        "realworld",
        "training",
        "automl",
    ),
    "domain": (
        "security",
        "analytics",
        "evaluation",
        "reporting",
        "explain",
        "registry",
        "models",
        "imaging",
        "data",
    ),
    "ports and kernel": (
        "platform",
        "cli_support",
        "config",
        "errors",
        "atomic",
        "identity",
        "audit",
        "runtime_info",
    ),
}
"""How the packages are grouped in the picture (top to bottom, as in the layer contracts)."""


def package_edges(root: str = "fmnist") -> dict[str, set[str]]:
    """Direct imports between the first-level modules and packages of ``root``."""
    graph = grimp.build_graph(root, exclude_type_checking_imports=True)
    children = sorted({m.split(".")[1] for m in graph.modules if m.count(".") >= 1})
    edges: dict[str, set[str]] = {c: set() for c in children}
    for a in children:
        for b in children:
            if a != b and graph.direct_import_exists(
                importer=f"{root}.{a}", imported=f"{root}.{b}", as_packages=True
            ):
                edges[a].add(b)
    return edges


KERNEL = {"errors", "atomic", "config", "identity", "audit", "runtime_info", "cli_support"}
"""Imported by almost everything: drawn in the picture, their arrows left out for legibility."""


def mermaid(edges: dict[str, set[str]]) -> str:
    """A Mermaid flowchart of ``edges``, one subgraph per layer."""
    lines = ["```mermaid", "flowchart TB"]
    placed: set[str] = set()
    for index, (layer, members) in enumerate(LAYERS.items()):
        present = [m for m in members if m in edges]
        placed.update(present)
        lines.append(f'    subgraph L{index}["{layer}"]')
        lines.extend(f"        {m}" for m in present)
        lines.append("    end")
    others = sorted(set(edges) - placed)
    if others:
        lines.append('    subgraph Lx["other"]')
        lines.extend(f"        {m}" for m in others)
        lines.append("    end")
    for a in sorted(edges):
        for b in sorted(edges[a] - KERNEL):
            lines.append(f"    {a} --> {b}")
    lines.append("```")
    return "\n".join(lines)


def render(text: str, block: str) -> str:
    """``text`` with the generated block between the markers replaced by ``block``."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + block + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or ``--check``) the diagram in docs/architecture.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    fresh = render(text, mermaid(package_edges()))
    if args.check:
        if fresh != text:
            print(f"{DOC} is stale: run python scripts/architecture.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    print(f"wrote the package diagram into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
