"""The Jinja2 environment of the generated documents, and the filters their templates use.

Templates whose name ends in ``.html.j2`` are autoescaped; Markdown templates are not. Undefined
names raise (:class:`jinja2.StrictUndefined`), so a template cannot silently print nothing.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
NONE_TEXT = "–"
"""What :func:`fmt` prints for a missing value (an en dash)."""


def fmt(value: float | int | None, spec: str, none: str = NONE_TEXT) -> str:
    """``format(value, spec)``, or ``none`` when the value is missing."""
    return none if value is None else format(value, spec)


def md_cell(text: object) -> str:
    """``text`` safe inside a Markdown table cell (pipes escaped, one line)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def inline_html(text: object) -> Markup:
    """HTML-escape ``text`` and render its inline Markdown (``code`` and **bold**)."""
    escaped = str(escape(str(text)))
    escaped = _INLINE_CODE.sub(r"<code>\1</code>", escaped)
    return Markup(_BOLD.sub(r"<strong>\1</strong>", escaped))  # noqa: S704 - escaped above  # nosec B704


def slug(title: str) -> str:
    """An HTML id from a title: lowercase letters and digits joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def b64(data: bytes) -> str:
    """``data`` as base64 text (for ``data:`` URIs)."""
    return base64.b64encode(data).decode("ascii")


@cache
def environment() -> jinja2.Environment:
    """The shared environment: templates of this package, filters :func:`fmt`,
    :func:`md_cell`, :func:`inline_html`, :func:`slug` and :func:`b64`."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fmnist.reporting", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt=fmt, md_cell=md_cell, inline_html=inline_html, slug=slug, b64=b64)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return environment().get_template(template).render(**context)
