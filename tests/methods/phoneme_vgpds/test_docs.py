"""The code example of docs/methods/phoneme-vgpds.md runs as printed and classifies its toy tokens."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "methods" / "phoneme-vgpds.md"


def test_usage_example_runs_and_classifies():
    if not DOC.exists():
        pytest.skip(f"{DOC} not in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"{DOC}: no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["predicted"].tolist() == [0, 1, 0]
    assert namespace["hmm"].predict(namespace["test"]).tolist() == [0, 1, 0]
    assert namespace["scores"].shape == (3, 2)
    assert namespace["features"].shape == (98, 39)
    assert ((0 <= namespace["terms"].nystrom_ratio) & (namespace["terms"].nystrom_ratio <= 1)).all()
