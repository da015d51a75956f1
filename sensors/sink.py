"""The one callback every feed adapter delivers to.

    sink(events: list[Event], rejections: list[Rejection]) -> None

Synchronous and quick (it hands the batch to the bus / the core); adapters
call it from their event loop and never call it with two empty lists.
"""

from __future__ import annotations

from typing import Callable

from ioc.errors import Rejection
from ioc.events import Event

Sink = Callable[[list[Event], list[Rejection]], None]


class CollectingSink:
    """A sink that keeps everything (tests, small tools)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejections: list[Rejection] = []
        self.batches = 0

    def __call__(self, events: list[Event], rejections: list[Rejection]) -> None:
        self.batches += 1
        self.events.extend(events)
        self.rejections.extend(rejections)
