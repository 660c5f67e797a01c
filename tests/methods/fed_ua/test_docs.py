"""The code example of docs/methods/fed-ua.md runs as printed."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "methods" / "fed-ua.md"


def test_own_model_example_runs(capsys):
    if not DOC.exists():
        pytest.skip(f"{DOC} not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"{DOC}: no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert set(namespace["state"]) == {"codeword", "threshold"}
    assert "accepts" in capsys.readouterr().out
