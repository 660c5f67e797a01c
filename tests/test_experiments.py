"""The registry's contract fields: corpora that exist, docs pages that exist, headline metrics."""

from pathlib import Path

from devicelab import experiments
from devicelab.cli import main
from devicelab.data.corpora import CORPORA

ROOT = Path(__file__).resolve().parents[1]


def test_every_implemented_experiment_names_real_corpora_and_docs():
    implemented = [n for n in experiments.names() if experiments.is_implemented(n)]
    assert {"kws-ssn", "fed-dg"} <= set(implemented)
    for name in implemented:
        info = experiments.overview(name)
        assert info.corpora and set(info.corpora) <= set(CORPORA), name
        assert (ROOT / info.docs).is_file(), f"{name}: {info.docs} is missing"
        assert info.headline, name


def test_unimplemented_experiments_have_empty_fields():
    for name in experiments.names():
        if not experiments.is_implemented(name):
            info = experiments.overview(name)
            assert not info.implemented and info.corpora == () and info.docs == "" and info.paper


def test_list_shows_corpora_docs_and_headline(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "corpora: synth-commands; docs: docs/methods/kws-ssn.md; headline: test_acc_ssn" in out
