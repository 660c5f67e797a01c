"""The data choice: --data (a real data set, or a built corpus) or the profile's built corpus."""

import json
from pathlib import Path

from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.sources import resolve_data


class Ctx(RunContext):
    def corpus(self, name: str, profile: str | None = None) -> Path:
        return Path("/built") / name / self.profile


def _ctx(tmp_path, data_path=None) -> Ctx:
    experiment = Experiment(name="t", paper="p", config_cls=dict, run=lambda c, x: {})
    return Ctx(experiment, {}, tmp_path / "run", "smoke", data_path=data_path)


def test_without_data_the_profile_corpus(tmp_path):
    source = resolve_data(_ctx(tmp_path), "synth-commands")
    assert source.path == Path("/built/synth-commands/smoke") and source.corpus == "synth-commands"


def test_a_real_data_set_is_not_a_corpus(tmp_path):
    source = resolve_data(_ctx(tmp_path, tmp_path / "gsc"), "synth-commands")
    assert source.path == tmp_path / "gsc" and not source.is_corpus


def test_a_built_corpus_given_with_data_keeps_its_name(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"corpus": "glyph-digits"}))
    source = resolve_data(_ctx(tmp_path, folder), "synth-commands")
    assert source.is_corpus and source.corpus == "glyph-digits" and source.path == folder
