"""The code example of docs/methods/tta-lsa.md runs as written."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "methods" / "tta-lsa.md"


def test_the_documented_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})
    assert "estimated target prior" in capsys.readouterr().out
