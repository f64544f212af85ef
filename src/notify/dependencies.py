"""`Annotated` dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from notify.auth.service import Caller, authenticate
from notify.state import ApiState


async def get_state(request: Request) -> ApiState:
    """Return the process's ApiState, built by the lifespan."""
    state = request.app.state.notify
    assert isinstance(state, ApiState)
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_caller(request: Request, state: StateDep) -> Caller:
    """Authenticate the request (DESIGN §4.2)."""
    return await authenticate(request.headers.get("authorization"), state.services, state.settings.api.jwt_leeway_s)


CallerDep = Annotated[Caller, Depends(get_caller)]
