"""The one place that chooses the event loop: uvloop when asked or available, else asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal

LoopChoice = Literal["auto", "asyncio", "uvloop"]


def loop_factory(choice: LoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory for the chosen loop.

    Raises ImportError when ``uvloop`` is asked for explicitly and is not installed;
    ``auto`` falls back to the standard loop quietly.
    """
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, Any], choice: LoopChoice = "auto") -> Any:
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
