"""The API and the worker freeze their start-up heap, so full collections stay short under load."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from notify.ops import heap


def test_a_started_api_has_frozen_its_startup_objects(app: FastAPI) -> None:
    frozen = gc.get_freeze_count()
    assert frozen > 10_000, "the app's modules and models are out of the collector's reach"
    assert heap.freeze_startup_objects() == frozen, "a second start in the same process freezes nothing more"
