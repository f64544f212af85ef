"""The ingest reference: a bare Starlette endpoint that parses the same JSON and XADDs it (DESIGN §10).

Served by uvicorn exactly like the API (2 workers on a listening socket each, uvloop, httptools with the API's
one write per response, `notify.http_protocol`) so the ratio compares our stack's work per request with the least
any asyncio Python endpoint must do: HTTP, JSON parse, one XADD, a JSON reply.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from notify import serving

STREAM = "bench:bare"


async def post_email(request: Request) -> Response:
    """Parse the notification JSON, XADD it and answer 201 with an id."""
    body = orjson.loads(await request.body())
    entry = {
        "id": str(uuid.uuid4()),
        "to": body["email_address"],
        "template_id": body["template_id"],
        "personalisation": body.get("personalisation"),
        "reference": body.get("reference"),
    }
    redis: Redis = request.app.state.redis
    await redis.xadd(STREAM, {b"n": orjson.dumps(entry)})
    return Response(orjson.dumps({"id": entry["id"]}), status_code=201, media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Open one Redis pool per worker process."""
    app.state.redis = Redis.from_url(os.environ["REDIS_URL"], max_connections=200)
    try:
        yield
    finally:
        await app.state.redis.aclose()


app = Starlette(routes=[Route("/v2/notifications/email", post_email, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    """`python -m notify.bench.bare PORT WORKERS HTTP [NICE]`: serve this endpoint as `notify api` serves the API."""
    port, workers, http = sys.argv[1:4]
    nice = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    serving.run(
        "notify.bench.bare:app",
        host="127.0.0.1",
        port=int(port),
        workers=int(workers),
        nice=nice,
        loop="uvloop",
        http=http,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
