"""The Debian fetcher on tiny packages built with dpkg-deb: no network, no root."""

import shutil
import subprocess

import pytest

from devicelab.data.debs import DebFetcher, MissingToolError, PackageError, _publish_unpacked, require_tool

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _make_deb(folder, name="tiny-sounds", version="1.2-3"):
    root = folder / f"{name}-src"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test package\n"
    )
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nLicense: CC-BY-SA-3.0\n\nFiles: b/*\nLicense: GPL-2+\n"
    )
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "beep.txt").write_text("beep")
    debs = folder / "debs"
    debs.mkdir(exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(debs / f"{name}_{version}_all.deb")],
        check=True,
        capture_output=True,
    )
    return debs


def test_fetch_unpacks_and_records_licences(tmp_path):
    debs = _make_deb(tmp_path)
    fetcher = DebFetcher(cache=tmp_path / "cache", source="dir", deb_dir=debs)
    pkg = fetcher.fetch("missing-pkg|tiny-sounds")  # the first available alternative wins
    assert (pkg.name, pkg.version) == ("tiny-sounds", "1.2-3")
    assert (pkg.root / "usr/share/tiny-sounds/beep.txt").read_text() == "beep"
    assert pkg.licences == ["CC-BY-SA-3.0", "GPL-2+"]
    assert pkg.source_record()["sha256"] == pkg.sha256 and len(pkg.sha256) == 64
    again = fetcher.fetch("tiny-sounds")  # reused offline
    assert again.root == pkg.root
    member = fetcher.extract_member("tiny-sounds", "usr/share/tiny-sounds/beep.txt", tmp_path / "x")
    assert member.read_text() == "beep"


def test_missing_and_corrupt_packages_are_named(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    fetcher = DebFetcher(cache=tmp_path / "cache", source="dir", deb_dir=debs)
    with pytest.raises(PackageError, match="no-such-pkg"):
        fetcher.fetch("no-such-pkg")
    (debs / "broken_1.0_all.deb").write_bytes(b"not a deb")
    with pytest.raises(PackageError, match="broken_1.0_all.deb: not a valid .deb"):
        fetcher.fetch("broken")


def test_missing_tool_names_the_package():
    with pytest.raises(MissingToolError, match="install the Debian package `festival`"):
        require_tool("definitely-not-a-tool-festival", "festival")


def test_free_form_copyright_gives_no_licence_names(tmp_path):
    from devicelab.data.debs import read_licences

    doc = tmp_path / "usr/share/doc/old-pkg"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "This package was debianized by someone.\nLicense: you may copy it freely\n"
    )
    assert read_licences(tmp_path, "old-pkg") == []


def test_an_unpack_never_replaces_one_that_another_build_is_reading(tmp_path):
    # two builds that unpack one package at once: the second must not delete the tree the first reads
    root, tmp = tmp_path / "pkg_1.0", tmp_path / "pkg_1.0.tmp-2"
    for folder, content in ((root, "first"), (tmp, "second")):
        (folder / "usr").mkdir(parents=True)
        (folder / "usr" / "file").write_text(content)
        (folder / ".unpacked").write_text("1.0")
    _publish_unpacked(tmp, root)
    assert (root / "usr" / "file").read_text() == "first" and not tmp.exists()


def test_an_unpack_is_published_where_none_is_complete(tmp_path):
    root, tmp = tmp_path / "pkg_1.0", tmp_path / "pkg_1.0.tmp-2"
    (root / "usr").mkdir(parents=True)  # left half-written by a killed build of an older version
    (tmp / "usr").mkdir(parents=True)
    (tmp / ".unpacked").write_text("1.0")
    _publish_unpacked(tmp, root)
    assert (root / ".unpacked").exists() and not tmp.exists()
