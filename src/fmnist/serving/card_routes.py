"""``GET /v1/models/{name}/{version}/card``: a registered version's model card.

The card is read from the version's run artifacts in the registry (see
:mod:`fmnist.registry.model_cards`) and cached under ``<home>/serving/cards``. HTML by default,
Markdown with ``?format=md``. An unknown model or version, or a version without a card, is a
404 problem; a registry that cannot be reached is a 503 problem.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, Query
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fmnist.config import Settings
from fmnist.platform.registry import RegistryError
from fmnist.registry.model_cards import ModelCardNotFoundError, fetch_model_card
from fmnist.serving.model_store import ModelStore
from fmnist.serving.problems import ProblemError
from fmnist.serving.schemas import problem_responses

logger = logging.getLogger("fmnist.serving")

CARD_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""The card is self-contained: it may load nothing but its inline styles and data: images."""

NamePath = Annotated[
    str,
    PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="registered model name"),
]
VersionPath = Annotated[
    str,
    PathParam(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="version number or alias (champion, challenger)",
    ),
]
FormatQuery = Annotated[
    Literal["html", "md"],
    Query(alias="format", description="html (self-contained page) or md (Markdown)"),
]


def add_card_routes(app: FastAPI, store: ModelStore, settings: Settings) -> None:
    """Add the model card route to ``app``; cards are looked up through ``store``'s registry."""
    cache = settings.home / "serving" / "cards"
    tracking_uri = settings.resolved_tracking_uri

    def registry_missing() -> bool:
        """A local SQLite store that does not exist yet (do not create it to find it empty)."""
        return (
            settings.serving.model_export is None  # else models come from the export
            and tracking_uri.startswith("sqlite:///")
            and not Path(tracking_uri.removeprefix("sqlite:///")).is_file()
        )

    @app.get(
        "/v1/models/{name}/{version}/card",
        tags=["models"],
        summary="The model card of a registered version",
        response_class=Response,
        responses={
            200: {
                "description": "the card",
                "content": {"text/html": {}, "text/markdown": {}},
            },
            **problem_responses(404, 422, 503),
        },
    )
    async def model_card(
        name: NamePath, version: VersionPath, card_format: FormatQuery = "html"
    ) -> Response:
        """The card of version (or alias) ``version`` of registered model ``name``."""
        if registry_missing():
            raise ProblemError(
                404,
                f"no model registered as {name!r}: the registry is empty",
                slug="model-not-found",
            )
        try:
            card = await run_in_threadpool(
                fetch_model_card, store.registry(name), version, card_format, cache
            )
        except ModelCardNotFoundError as exc:
            raise ProblemError(404, str(exc), slug="card-not-found") from None
        except RegistryError as exc:
            raise ProblemError(404, str(exc), slug="model-not-found") from None
        except Exception as exc:  # registry down, unreadable artifact store
            logger.exception("model card of %s/%s could not be read", name, version)
            raise ProblemError(
                503, f"model card unavailable: {type(exc).__name__}", slug="registry"
            ) from exc
        return Response(
            card.content,
            media_type=card.media_type,
            headers={
                "X-Model-Version": str(card.version),
                "Content-Security-Policy": CARD_CSP,
                "X-Content-Type-Options": "nosniff",
            },
        )
