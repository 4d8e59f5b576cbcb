"""The model card: one page per model version, rendered twice from the same sections.

:func:`~fmnist.evaluation.card_sections.build_model_card` builds the card's data; the templates
``model_card.md.j2`` and ``model_card.html.j2`` of :mod:`fmnist.reporting` render it as Markdown
(figures referenced by file name, next to the card) and as a self-contained HTML page (inline
CSS, figures embedded as base64 ``data:`` URIs, no scripts, no external assets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

from fmnist.atomic import atomic_write_text
from fmnist.evaluation.card_data import ModelCard
from fmnist.evaluation.card_sections import CardInputs, build_model_card
from fmnist.reporting.templates import render

MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"


def render_markdown(card: ModelCard) -> str:
    """The card as Markdown; figures are referenced by their ``file_name``."""
    return render("model_card.md.j2", card=card)


def render_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page (inline CSS, embedded images, no scripts)."""
    return render("model_card.html.j2", card=card)


def model_card_markdown(**inputs: Unpack[CardInputs]) -> str:
    """Render the model card of a trained and evaluated model as Markdown."""
    return render_markdown(build_model_card(**inputs))


def model_card_html(**inputs: Unpack[CardInputs]) -> str:
    """Render the model card of a trained and evaluated model as a self-contained HTML page."""
    return render_html(build_model_card(**inputs))


def write_model_cards(folder: Path, **inputs: Unpack[CardInputs]) -> dict[str, Path]:
    """Write the Markdown and HTML cards into ``folder`` (atomically); returns their paths.

    Figures with a ``file_name`` must already lie in ``folder`` for the Markdown links to work.
    Keys: ``model_card`` (Markdown) and ``model_card_html``.
    """
    card = build_model_card(**inputs)
    markdown, page = folder / MARKDOWN_FILE, folder / HTML_FILE
    atomic_write_text(markdown, render_markdown(card))
    atomic_write_text(page, render_html(card))
    return {"model_card": markdown, "model_card_html": page}
