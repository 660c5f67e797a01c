"""The finishing step every corpus builder ends with: one manifest shape for speech and sound corpora."""

import ast
from dataclasses import dataclass
from pathlib import Path

from devicelab.data.corpora import _speech
from devicelab.data.corpora._speech import manifest_fields

CORPORA = Path(_speech.__file__).parent


@dataclass
class _Params:
    clips: int = 3


def test_fields_in_order_with_builder_specific_ones_before_the_sources():
    fields = manifest_fields(
        "toy", _Params(), sources=[{"name": "x"}], counts={"clips": 3}, warnings=[], extra=1, tools={"t": "1"}
    )
    assert list(fields) == [
        "builder",
        "builder_version",
        "parameters",
        "extra",
        "sources",
        "tool_versions",
        "counts",
        "warnings",
    ]
    assert fields["parameters"] == {"clips": 3} and fields["tool_versions"]["t"] == "1"
    assert "numpy" in fields["tool_versions"]


def test_speech_and_sound_builders_finish_with_the_shared_step():
    for name in ("synth_commands", "synth_speakers", "synth_phones", "game_scenes", "game_events"):
        tree = ast.parse((CORPORA / f"{name}.py").read_text())
        calls = {
            n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert "manifest_fields" in calls, name
        keys = {
            k.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Dict)
            for k in n.keys
            if isinstance(k, ast.Constant)
        }
        assert "builder_version" not in keys, f"{name} writes its own manifest block"
