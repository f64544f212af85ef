"""The API and the worker tune their collector at start-up: the start-up heap frozen, young collections rarer."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from notify.ops import heap


def test_a_started_api_has_frozen_its_startup_objects_and_raised_the_young_threshold(app: FastAPI) -> None:
    frozen = gc.get_freeze_count()
    assert frozen > 10_000, "the app's modules and models are out of the collector's reach"
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert heap.tune_collector() == frozen, "a second start in the same process freezes nothing more"
