"""glyph-digits: the smoke build (installed fonts, no download) is deterministic, atomic and in its layout."""

import csv
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from devicelab.data import corpora
from devicelab.data.cache import is_built, read_manifest, verify_checksums
from devicelab.data.corpora import glyph_digits
from devicelab.data.datasets.domains import class_names, list_domains, load_domain
from devicelab.data.images import backgrounds
from devicelab.data.images.fonts import FontFace, base_family, style_domain

SYSTEM_FONTS_PRESENT = any(Path(folder).is_dir() for _, folder, _ in glyph_digits.SYSTEM_FONTS)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("glyph-digits-a")
    return corpora.build_corpus("glyph-digits", "smoke", root=root, log=lambda s: None)


def test_smoke_build_is_deterministic(smoke, tmp_path):
    """Same seed, same content, whatever the number of worker processes."""
    again = corpora.build_corpus("glyph-digits", "smoke", root=tmp_path, workers=2, log=lambda s: None)
    first = read_manifest("glyph-digits", "smoke", root=smoke.parent.parent)
    second = read_manifest("glyph-digits", "smoke", root=tmp_path)
    assert first["content_sha256"] == second["content_sha256"]
    assert (smoke / "labels.csv").read_text() == (again / "labels.csv").read_text()
    assert verify_checksums(smoke) == []


def test_smoke_layout_and_lists(smoke):
    manifest = read_manifest("glyph-digits", "smoke", root=smoke.parent.parent)
    domains = manifest["parameters"]["domains"]
    assert domains[0] == "sklearn"
    if SYSTEM_FONTS_PRESENT:
        assert {"serif", "sans", "mono"} <= set(domains)
    assert sorted(list_domains(smoke)) == sorted(domains)
    assert class_names(smoke) == [str(d) for d in range(10)]
    for domain in domains:
        for split in ("train", "test"):
            lines = (smoke / "splits" / f"{domain}_{split}.txt").read_text().split("\n")
            lines = [line for line in lines if line]
            labels = [int(line.split()[1]) for line in lines]
            assert sorted(set(labels)) == list(range(10)), (domain, split)
            assert all(line.startswith(f"{domain}/{line.split()[1]}/") for line in lines)
        images, labels = load_domain(smoke, domain, "train")
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3) and labels.dtype == np.int64
        assert len(images) == manifest["counts"][domain]["train"]["total"]
    assert not (smoke / "hand").exists() or "hand" in domains


def test_splits_keep_font_families_and_scans_apart(smoke):
    rows = list(csv.DictReader(open(smoke / "labels.csv")))
    splits_of = defaultdict(set)
    for row in rows:
        key = (row["domain"], row["family"] if row["domain"] != "sklearn" else row["face"])
        splits_of[key].add(row["split"])
    assert all(len(s) == 1 for s in splits_of.values()), [k for k, s in splits_of.items() if len(s) > 1]
    fonts = list(csv.DictReader(open(smoke / "fonts.csv")))
    kept = {(f["package"], f["font_file"]) for f in fonts if f["kept"] == "1"}
    assert {(r["package"], r["font_file"]) for r in rows if r["domain"] != "sklearn"} <= kept


def test_images_have_ink_contrast(smoke):
    rows = [r for r in csv.DictReader(open(smoke / "labels.csv")) if r["domain"] != "sklearn"]
    from PIL import Image

    for row in rows[::7]:
        image = np.asarray(Image.open(smoke / row["path"]), dtype=np.float64)
        luminance = image @ np.array([0.2126, 0.7152, 0.0722]) / 255
        assert np.ptp(luminance) > 0.2, row["path"]  # a visible glyph, never a blank tile


def test_failed_build_leaves_nothing_built(tmp_path, monkeypatch):
    def broken(out, params, seed):
        (out / "sklearn" / "0" / "scan0000.png").write_bytes(b"half-written")
        raise RuntimeError("sklearn scans unreadable")

    monkeypatch.setattr(glyph_digits, "write_sklearn", broken)
    monkeypatch.setattr(glyph_digits, "plan_renders", lambda *args: ([], []))  # fail fast, after the fonts
    with pytest.raises(RuntimeError, match="unreadable"):
        corpora.build_corpus("glyph-digits", "smoke", root=tmp_path, log=lambda s: None)
    assert not is_built("glyph-digits", "smoke", tmp_path)
    assert not any(p.name.startswith(".smoke.partial") for p in (tmp_path / "glyph-digits").iterdir())


def test_quick_sources_list_the_spec_packages():
    names = glyph_digits.sources("quick", ())
    assert "gimp-data" in names and "fonts-aenigma" in names and len(names) == 58
    assert glyph_digits.sources("smoke", ()) == []


def _face(family: str, fixed: bool = False) -> FontFace:
    return FontFace("pkg", Path("x.ttf"), "./x.ttf", family, family, fixed, True)


def test_style_domain_rules():
    assert style_domain(_face("Liberation Mono"), "serif") == "mono"
    assert style_domain(_face("FreeSerif"), "sans") == "serif"
    assert style_domain(_face("DejaVu Sans"), "serif") == "sans"
    assert style_domain(_face("Cousine", fixed=True), "sans") == "mono"
    assert style_domain(_face("Go"), "mono") == "sans"
    assert style_domain(_face("Humor Sans"), "hand") == "hand"  # keywords move faces only in text packages
    assert base_family("DejaVu Sans Condensed") == "DejaVu Sans"
    assert base_family("OCRABold") == "OCRA"


def test_read_gimp_pattern(tmp_path):
    name = b"Tiny\0"
    header = struct.pack(">5I", 20 + 4 + len(name), 1, 3, 2, 1) + b"GPAT" + name
    pixels = bytes([0, 50, 100, 150, 200, 250])
    (tmp_path / "t.pat").write_bytes(header + pixels)
    got_name, rgb = backgrounds.read_pat(tmp_path / "t.pat")
    assert got_name == "Tiny" and rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[1, 2], [250, 250, 250])
    (tmp_path / "bad.pat").write_bytes(header.replace(b"GPAT", b"GIMP") + pixels)
    with pytest.raises(backgrounds.PatternError, match="bad.pat"):
        backgrounds.read_pat(tmp_path / "bad.pat")
    (tmp_path / "short.pat").write_bytes(header + pixels[:3])
    with pytest.raises(backgrounds.PatternError, match="truncated"):
        backgrounds.read_pat(tmp_path / "short.pat")


def test_wallpaper_photos_become_crop_sources(tmp_path):
    from PIL import Image

    folder = tmp_path / "usr" / "share" / "backgrounds" / "mate" / "nature"
    folder.mkdir(parents=True)
    Image.new("RGB", (400, 300), (10, 120, 200)).save(folder / "Lake.jpg")
    photos = backgrounds.load_photos(tmp_path / "usr" / "share" / "backgrounds", tmp_path, "Wallpaper")
    assert [p.member for p in photos] == ["./usr/share/backgrounds/mate/nature/Lake.jpg"]
    assert photos[0].pixels.shape == (192, 256, 3)
    crop = backgrounds.texture(photos[0], 32, np.random.default_rng(0))
    assert crop.shape == (32, 32, 3)


def test_unknown_extra_is_refused(tmp_path):
    with pytest.raises(ValueError, match="wallpapers, shared-backgrounds"):
        corpora.build_corpus(
            "glyph-digits", "smoke", root=tmp_path, extras=("wallpaper",), log=lambda s: None
        )
    assert not is_built("glyph-digits", "smoke", tmp_path)
