"""Progress: a tqdm bar on a terminal, one plain line per item (epoch) in logs; DEVICELAB_PROGRESS chooses.

``DEVICELAB_PROGRESS=0`` turns progress off, ``=1`` forces the bar, ``=lines`` forces the plain lines; unset,
a terminal on stderr gets the bar and anything else (a log file, a pipe, CI) the lines. Lines are printed for
every item of a loop of at most 50 items (epochs) and otherwise at most about once a second, so a loop of
many short steps does not flood a log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

LINE_EVERY_ITEM_UP_TO = 50  # loops of at most this many items print a line for each
LINE_INTERVAL_S = 1.0  # longer loops print at most one line per this many seconds (and the last item)


def progress_mode() -> str:
    """``"off"``, ``"bar"`` or ``"lines"`` from ``DEVICELAB_PROGRESS`` and whether stderr is a terminal."""
    forced = os.environ.get("DEVICELAB_PROGRESS", "").strip().lower()
    if forced in ("0", "false", "off", "no"):
        return "off"
    if forced in ("1", "true", "bar", "yes"):
        return "bar"
    if forced == "lines":
        return "lines"
    return "bar" if sys.stderr.isatty() else "lines"


def _lines(iterable: Iterable[T], desc: str, total: int | None, initial: int, unit: str) -> Iterator[T]:
    t0 = last = time.monotonic()
    for i, item in enumerate(iterable, start=initial + 1):
        yield item
        now = time.monotonic()
        small = total is not None and total <= LINE_EVERY_ITEM_UP_TO
        if small or now - last >= LINE_INTERVAL_S or i == total:
            count = f"{i}/{total}" if total is not None else f"{i}"
            label = f"{unit} {count}" if unit else count
            print(f"{desc}: {label} ({now - t0:.1f} s)", file=sys.stderr, flush=True)
            last = now


def progress(
    iterable: Iterable[T],
    desc: str = "",
    total: int | None = None,
    leave: bool = False,
    *,
    initial: int = 0,
    unit: str = "",
) -> Iterable[T]:
    """Iterate ``iterable`` showing progress (see the module docstring); ``initial`` items were done before
    (a resumed loop), ``unit`` names an item in the plain lines (``"epoch"``)."""
    mode = progress_mode()
    if mode == "off":
        return iterable
    if mode == "lines":
        return _lines(iterable, desc, total, initial, unit)
    return tqdm(iterable, desc=desc, total=total, initial=initial, leave=leave, dynamic_ncols=True)
