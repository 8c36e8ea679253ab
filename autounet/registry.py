"""A tiny name -> object registry with "did you mean" errors, used for networks, losses and more."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Map lower_snake names to objects (usually classes or factory functions).

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages ("network", "loss", ...).

    Examples
    --------
    >>> losses = Registry("loss")
    >>> @losses.register("absolute")
    ... def absolute(a, b):
    ...     return abs(a - b)
    >>> losses.get("absolute")(3, 5)
    2
    >>> losses.get("absolut")
    Traceback (most recent call last):
    ...
    KeyError: 'unknown loss "absolut"; available: absolute. Did you mean "absolute"?'
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under ``name``."""

        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f'{self.kind} "{name}" is already registered; choose another name')
            self._entries[name] = obj
            return obj

        return decorate

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; unknown names list the choices and the closest match."""
        try:
            return self._entries[name]
        except KeyError:
            available = ", ".join(sorted(self._entries)) or "(none)"
            close = difflib.get_close_matches(name, list(self._entries), n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise KeyError(f'unknown {self.kind} "{name}"; available: {available}.{hint}') from None

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
