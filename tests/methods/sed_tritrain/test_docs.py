"""The code example of docs/methods/sed-tritrain.md runs as printed."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "methods" / "sed-tritrain.md"


def test_pieces_example_runs():
    if not DOC.exists():
        pytest.skip(f"{DOC} not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"{DOC}: no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["strong"].shape == (2, 50, 2)
    assert 0.0 <= namespace["score"].macro_f1 <= 1.0
    assert namespace["labels"].mask.shape == (2, 50, 2)
