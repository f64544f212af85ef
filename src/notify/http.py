"""The JSON response every route returns (orjson: fast, and handles UUIDs and datetimes)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    """A JSONResponse rendered with orjson."""

    def render(self, content: Any) -> bytes:
        """Serialise `content`."""
        return orjson.dumps(content)
