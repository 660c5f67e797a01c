"""The code example of docs/methods/sv-kan.md runs as printed."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "methods" / "sv-kan.md"


def test_training_and_verification_example_runs():
    if not DOC.exists():
        pytest.skip(f"{DOC} not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"{DOC}: no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert -1.0 <= namespace["score"] <= 1.0
    assert namespace["adversary"].scale > 0 and namespace["loss"].item() > 0
