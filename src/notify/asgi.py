"""ASGI entry point for `uvicorn notify.asgi:app` (settings from the environment)."""

from notify.app import create_app
from notify.settings import Settings

app = create_app(Settings())
