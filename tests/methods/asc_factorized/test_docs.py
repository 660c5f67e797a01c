"""The code example of docs/methods/asc-factorized.md runs as printed."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "methods" / "asc-factorized.md"


def test_factorized_example_runs():
    if not DOC.exists():
        pytest.skip(f"{DOC} not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"{DOC}: no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["loss"].item() > 0 and 0.0 <= namespace["active"] <= 1.0
