"""What the engine works out once per operation: the one bounded cache every such result uses."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["OperationCache"]

V = TypeVar("V")


class OperationCache(Generic[V]):
    """Values made once per document node (the parser cache hands the same node to every
    request of a document) and an optional extra key; the least recently used go past
    `max_size`. Holding the node keeps its `id` from being reused while it is a key."""

    __slots__ = ("_items", "_max_size")

    def __init__(self, max_size: int = 256) -> None:
        self._max_size = max_size
        self._items: OrderedDict[tuple[int, Hashable], tuple[object, V]] = OrderedDict()

    def values(self) -> list[V]:
        """The values held, least recently used first."""
        return [value for _, value in self._items.values()]

    def latest(self) -> tuple[object, V] | None:
        """The node and value most recently made or used, if any."""
        return next(reversed(self._items.values()), None)

    def get(self, node: object, make: Callable[[], V], extra: Hashable = None) -> V:
        """`make()` for `node` (and `extra`), remembered."""
        key = (id(node), extra)
        cached = self._items.get(key)
        if cached is not None and cached[0] is node:
            self._items.move_to_end(key)
            return cached[1]
        value = make()
        if self._max_size > 0:
            self._items[key] = (node, value)
            if len(self._items) > self._max_size:
                self._items.popitem(last=False)
        return value
