"""Keep the garbage collector's work small in long-running processes: fewer young collections, shorter full ones."""

from __future__ import annotations

import gc

# Young-generation threshold: container objects allocated, net of those freed, before a young collection.
# CPython's default is 700. Under load a process holds a few thousand young objects at any moment (the requests,
# sends and batches in flight), so at 700 it collected about a hundred times a second and spent 8-10 % of its CPU
# there, walking objects that reference counting frees a moment later (BENCHMARKS.md, sixth session). At 10,000
# those peaks stay under the threshold; young collections still run when allocations outgrow it (a bulk job's
# chunks), and cyclic garbage waits a little longer: peak RSS did not move in any bench.
YOUNG_THRESHOLD = 10_000

_tuned = False


def tune_collector() -> int:
    """Freeze what start-up allocated and raise the young threshold, once per process; return the frozen count.

    A started API process holds ~160,000 objects (modules, pydantic and SQLAlchemy models, botocore's data) that
    live until it exits. CPython's full collection walks all of them: ~50 ms on our 2-core box, a pause that every
    request in flight waits for, and most of the API's p99 under load. Frozen objects are never walked again, so a
    full collection only looks at what requests allocate. Later calls in the same process (an app built twice,
    as tests do) change nothing.
    """
    global _tuned  # the heap is per process, and so is this flag
    if not _tuned:
        _tuned = True
        gc.collect()
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    return gc.get_freeze_count()
