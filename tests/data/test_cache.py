"""Atomic corpus builds: an interrupted build is never mistaken for a built corpus and is redone."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from devicelab.data import corpora
from devicelab.data.cache import corpus_dir, is_built, read_manifest, verify_checksums
from devicelab.data.corpora import BuildContext, CorpusBuilder


def _builder(fail_after: int | None = None) -> CorpusBuilder:
    def build(ctx: BuildContext) -> dict:
        for i in range(5):
            if fail_after is not None and i == fail_after:
                raise RuntimeError(f"item {i}: unreadable clip")
            (ctx.out / f"{i}.txt").write_text(f"item {i} seed {ctx.seed}")
        return {"counts": {"items": 5}}

    return CorpusBuilder("tiny", "a tiny test corpus", build)


@pytest.fixture
def tiny(monkeypatch):
    def install(builder):
        monkeypatch.setitem(corpora.CORPORA, "tiny", "tiny")
        monkeypatch.setattr(corpora, "get_builder", lambda name: builder)

    return install


def test_build_writes_manifest_and_checksums(tiny, tmp_path):
    tiny(_builder())
    out = corpora.build_corpus("tiny", "smoke", seed=3, root=tmp_path, log=lambda s: None)
    manifest = read_manifest("tiny", "smoke", root=tmp_path)
    assert manifest["seed"] == 3 and manifest["counts"] == {"items": 5}
    assert verify_checksums(out) == []
    (out / "2.txt").write_text("tampered")
    assert verify_checksums(out) == ["2.txt: checksum mismatch"]


def test_failed_build_leaves_nothing_built(tiny, tmp_path):
    tiny(_builder(fail_after=3))
    with pytest.raises(RuntimeError, match="item 3: unreadable clip"):
        corpora.build_corpus("tiny", "smoke", root=tmp_path, log=lambda s: None)
    assert not is_built("tiny", "smoke", root=tmp_path)
    assert not corpus_dir("tiny", "smoke", root=tmp_path).exists()
    assert list((tmp_path / "tiny").glob(".smoke.partial-*")) == []


def test_killed_build_is_redone(tiny, tmp_path):
    """A build process killed half-way leaves a partial folder that the next build discards."""
    script = textwrap.dedent(f"""
        import os, signal
        from devicelab.data.cache import atomic_build
        with atomic_build("tiny", "smoke", root=__import__("pathlib").Path({str(tmp_path)!r})) as out:
            (out / "0.txt").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", script], env=dict(os.environ))
    assert r.returncode == -9
    assert list((tmp_path / "tiny").glob(".smoke.partial-*"))  # the debris is there ...
    assert not is_built("tiny", "smoke", root=tmp_path)  # ... but it does not count as built
    tiny(_builder())
    out = corpora.build_corpus("tiny", "smoke", root=tmp_path, log=lambda s: None)
    assert sorted(p.name for p in out.iterdir()) == [
        "0.txt",
        "1.txt",
        "2.txt",
        "3.txt",
        "4.txt",
        "checksums.sha256",
        "manifest.json",
    ]
    assert (out / "0.txt").read_text() == "item 0 seed 0"
    assert list((tmp_path / "tiny").glob(".smoke.partial-*")) == []
    assert json.loads((out / "manifest.json").read_text())["corpus"] == "tiny"


def test_unknown_corpus_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: synth-commands"):
        corpora.get_builder("nope")


def test_a_corpus_built_with_other_parameters_is_rebuilt(tiny, tmp_path):
    profiles = {"smoke": {"items": 5}}
    tiny(dataclasses.replace(_builder(), profiles=profiles))
    corpora.build_corpus("tiny", "smoke", root=tmp_path, log=lambda s: None)
    first = read_manifest("tiny", "smoke", root=tmp_path)["parameters_key"]
    assert first and not corpora.is_stale("tiny", "smoke", root=tmp_path)

    logs = []
    corpora.build_corpus("tiny", "smoke", root=tmp_path, log=logs.append)  # same parameters: reused
    assert any("already built" in m for m in logs) and not any("rebuilding" in m for m in logs)

    profiles["smoke"] = {"items": 6}  # the builder changed since the corpus was built
    assert corpora.is_stale("tiny", "smoke", root=tmp_path)
    logs.clear()
    corpora.build_corpus("tiny", "smoke", root=tmp_path, log=logs.append)
    assert any("built with other parameters" in m and "rebuilding" in m for m in logs)
    assert read_manifest("tiny", "smoke", root=tmp_path)["parameters_key"] not in (None, first)
    assert not corpora.is_stale("tiny", "smoke", root=tmp_path)


def test_every_corpus_builder_declares_its_parameters():
    for name in corpora.CORPORA:
        if corpora.is_available(name) and name != "glyph-digits-c":  # derived from glyph-digits' test split
            assert corpora.parameters_key(name, "quick"), name
