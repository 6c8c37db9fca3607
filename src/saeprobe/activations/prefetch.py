"""Run an iterator in a background thread, a few items ahead of its consumer.

Tokenisation (Rust, releases the GIL) and file reading then overlap the model's forward pass.
Exceptions are re-raised in the consumer, in order. Closing the consumer stops the producer
and joins it: a thread left running inside native code (the tokenizer) at interpreter exit
aborts the process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple) -> bool:
        """Put `entry` unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_END, None))
        except BaseException as err:  # noqa: BLE001 -- handed to the consumer, not swallowed
            offer((_END, err))

    thread = threading.Thread(target=produce, name="prefetch")
    thread.start()
    try:
        while True:
            item, err = slots.get()
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()  # the producer finishes its current item, sees `stop`, and returns
