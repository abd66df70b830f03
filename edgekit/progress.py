"""Progress bars and stage messages, on standard error so ``--json`` output stays clean."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["bar", "configure", "say", "silenced"]

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
