"""A tiny in-process pub/sub for the simulated servers (ticks, trades, users, margin calls).

Publishers guard with :meth:`EventBus.listening` before building an event, so the market, the
risk sweep and the trade paths pay one dict lookup per change when no hub client listens.
Subscribers are plain synchronous callables run inline (the sandbox is one event loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EventBus:
    """Callbacks by topic: ``tick`` (Symbol), ``trade`` ((kind, Trade)), ``user`` ((kind,
    Account)), ``margin`` (Account after a level-type transition), ``symbol`` ((kind, Symbol)),
    ``mt5.margin`` ({login, type, direction})."""

    __slots__ = ("_subs",)

    def __init__(self) -> None:
        self._subs: dict[str, tuple[Callable[[Any], None], ...]] = {}

    def listening(self, topic: str) -> bool:
        return topic in self._subs

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Add ``callback`` for ``topic``; returns the function that removes it again."""
        self._subs[topic] = (*self._subs.get(topic, ()), callback)

        def unsubscribe() -> None:
            remaining = tuple(c for c in self._subs.get(topic, ()) if c is not callback)
            if remaining:
                self._subs[topic] = remaining
            else:
                self._subs.pop(topic, None)

        return unsubscribe

    def publish(self, topic: str, event: Any) -> None:
        for callback in self._subs.get(topic, ()):
            callback(event)
