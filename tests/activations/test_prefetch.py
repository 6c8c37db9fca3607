"""The background prefetcher keeps order, re-raises the producer's error, and stops when the
consumer stops."""

import threading
import time

import pytest

from saeprobe.activations.prefetch import prefetch


def test_items_arrive_in_order():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))


def test_producer_errors_reach_the_consumer_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise ValueError("bad line 3")

    got = []
    with pytest.raises(ValueError, match="bad line 3"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_closing_the_consumer_stops_the_producer():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    stream = prefetch(endless(), depth=2)
    assert next(stream) == 0
    stream.close()
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 5
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())
