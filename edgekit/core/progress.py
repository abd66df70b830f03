"""Progress bars and stage messages, on standard error so ``--json`` output stays clean."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["Tally", "bar", "configure", "say", "silenced"]

_state = {"bars": True, "messages": True}


def configure(*, bars: bool, messages: bool) -> None:
    """The CLI turns bars off for --json and --quiet; library users can do the same."""
    _state["bars"] = bars
    _state["messages"] = messages


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No messages or bars inside the block (a dry run of many builds' planning, say)."""
    saved = dict(_state)
    configure(bars=False, messages=False)
    try:
        yield
    finally:
        _state.update(saved)


def say(message: str) -> None:
    if _state["messages"]:
        print(message, file=sys.stderr, flush=True)


def bar(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """A tqdm bar when standard error is a terminal and bars are on; the plain items otherwise."""
    if not (_state["bars"] and sys.stderr.isatty()):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)


class Tally:
    """A tqdm bar for a count reported from elsewhere (finished sweep points, say), with a note beside it:
    the same bars as :func:`bar`, on a terminal only and not with --json or --quiet.

    >>> tally = Tally("points", unit="point")  # off a terminal: updates draw nothing
    >>> tally.update(3, 8, "2 running"); tally.close()
    """

    def __init__(self, desc: str, unit: str = "it") -> None:
        self._desc, self._unit = desc, unit
        self._bar: Any = None
        self._on = _state["bars"] and sys.stderr.isatty()

    def update(self, done: int, total: int, note: str = "") -> None:
        if not self._on:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self._desc, unit=self._unit, file=sys.stderr, leave=False,
                             dynamic_ncols=True)  # fmt: skip
        self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(note, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
