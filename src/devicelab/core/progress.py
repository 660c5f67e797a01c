"""Progress bars: tqdm on a terminal (or with ``DEVICELAB_PROGRESS=1``), silent in logs and tests."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T], desc: str = "", total: int | None = None, leave: bool = False
) -> Iterable[T]:
    forced = os.environ.get("DEVICELAB_PROGRESS")
    disable = None if forced is None else forced in ("0", "false", "")
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=disable, dynamic_ncols=True)
