"""The garbage collector settings of a serving process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from quizbot.runtime import GC_YOUNG_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_rarer() -> None:
    _young, middle, old = gc.get_threshold()
    survivor: list[list[int]] = [[]]  # a list is always tracked (a dict of str may not be)
    assert any(o is survivor for o in gc.get_objects())
    frozen = tune_garbage_collector()
    assert frozen == gc.get_freeze_count() > 0
    # What was alive is in the permanent generation: collections no longer see it.
    assert not any(o is survivor for o in gc.get_objects())
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("restored_gc")
def test_garbage_made_after_start_up_is_still_collected() -> None:
    tune_garbage_collector()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    del a, b
    assert gc.collect() >= 2
