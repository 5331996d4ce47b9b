"""`serve` tunes the cyclic GC once started (start-up objects frozen, fewer collections)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aibridge_graphql.gateway.serving import tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_start_up_objects_and_raises_the_thresholds() -> None:
    gc.unfreeze()
    tune_gc()
    assert gc.get_freeze_count() > 0
    gen0, _, _ = gc.get_threshold()
    assert gen0 >= 10_000
