"""The collector pause is counted: overlapping pauses (two requests' imports on two threads)
turn the collector back on only when the last one ends, and never turn on a collector that
was off before."""

from __future__ import annotations

import gc

import pytest

from server.collector import collector_paused


@pytest.fixture(autouse=True)
def _restore_collector():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_overlapping_pauses_resume_the_collector_after_the_last():
    gc.enable()
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second pause still holds it
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_pause_ended_by_an_error_resumes_the_collector():
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the chunk failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
