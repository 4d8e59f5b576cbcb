"""ASGI entry point for server worker processes (``uvicorn fmnist.asgi:create_app_from_env
--factory``): the settings come from :data:`~fmnist.serving.app.SETTINGS_ENV` (else the usual
sources), the adapters from the composition root."""

from __future__ import annotations

import os

from fastapi import FastAPI

from fmnist.composition import build_services
from fmnist.config import Settings, load_settings
from fmnist.serving.app import SETTINGS_ENV, create_app


def create_app_from_env() -> FastAPI:
    """The serving app of one worker process."""
    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings.model_validate_json(raw) if raw else load_settings().settings
    return create_app(build_services(settings))
