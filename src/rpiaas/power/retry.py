"""A power call retried with backoff, within a bound: the master's one rule for failed calls.

A switch that does not answer, refuses, or times out is asked again after
``first_delay_s``, then twice as long each time, at most ``tries`` times; each
try has ``timeout_s``.  The last failure is raised as a :class:`PowerError`
(one line); every failure before it is handed to ``on_error`` (the master
records it as an event on the node).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .base import PowerError

__all__ = ["retry_power"]

T = TypeVar("T")

TRIES = 4
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0


async def retry_power(call: Callable[[], Awaitable[T]], what: str, *, timeout_s: float,
                      tries: int = TRIES, first_delay_s: float = FIRST_DELAY_S,
                      on_error: Callable[[int, str], None] | None = None) -> T:
    """``await call()`` until it succeeds, at most ``tries`` times with a doubling delay.

    :param what: names the call in errors (``node1: power off``).
    :param on_error: given the try's number and the error's line after each failed try
        but the last.
    :raises PowerError: the last try's failure, or a timeout, naming ``what``.
    """
    delay = first_delay_s
    for attempt in range(1, tries + 1):
        try:
            return await asyncio.wait_for(call(), timeout_s)
        except asyncio.TimeoutError:
            why = f"{what}: no answer within {timeout_s:g} s"
        except PowerError as e:
            why = str(e) if str(e).startswith(what) else f"{what}: {e}"
        except OSError as e:
            why = f"{what}: {e.strerror or type(e).__name__}"
        if attempt == tries:
            raise PowerError(f"{why} (after {tries} tries)")
        if on_error is not None:
            on_error(attempt, why)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)
    raise AssertionError("unreachable")
