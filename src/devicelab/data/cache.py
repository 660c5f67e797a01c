"""The corpus cache: atomic builds, a lock per corpus, checksums and ``manifest.json``.

A build writes into ``NAME/.PROFILE.partial-<pid>/``; the manifest is written last and the folder is then
renamed to ``NAME/PROFILE/``. A corpus counts as built only when ``NAME/PROFILE/manifest.json`` exists, so an
interrupted build (at any point) is never mistaken for a complete one and is redone by the next build.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devicelab import __version__
from devicelab.core.paths import data_root

MANIFEST = "manifest.json"
CHECKSUMS = "checksums.sha256"


def corpus_dir(name: str, profile: str, root: Path | None = None) -> Path:
    return (root or data_root()) / name / profile


def is_built(name: str, profile: str, root: Path | None = None) -> bool:
    return (corpus_dir(name, profile, root) / MANIFEST).is_file()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_checksums(folder: Path) -> str:
    """Write ``checksums.sha256`` (sorted, relative paths) and return the sha256 of that file's content."""
    lines = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in (MANIFEST, CHECKSUMS) and not rel.startswith("features/"):
            lines.append(f"{sha256_file(p)}  {rel}")
    text = "\n".join(lines) + "\n"
    (folder / CHECKSUMS).write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_checksums(folder: Path) -> list[str]:
    """Files whose content no longer matches ``checksums.sha256`` (or that are missing)."""
    bad = []
    for line in (folder / CHECKSUMS).read_text().splitlines():
        digest, rel = line.split("  ", 1)
        p = folder / rel
        if not p.is_file():
            bad.append(f"{rel}: missing")
        elif sha256_file(p) != digest:
            bad.append(f"{rel}: checksum mismatch")
    return bad


def read_manifest(name: str, profile: str, root: Path | None = None) -> dict[str, Any]:
    path = corpus_dir(name, profile, root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"corpus {name!r} ({profile}) is not built: {path} is missing; "
            f"run `devicelab data build {name} --profile {profile}`"
        )
    return json.loads(path.read_text())


@contextlib.contextmanager
def atomic_build(name: str, profile: str, *, force: bool = False, root: Path | None = None) -> Iterator[Path]:
    """Yield a fresh partial folder; on normal exit it becomes ``NAME/PROFILE``, on error it is removed.

    The caller writes the manifest with :func:`finish_manifest` inside the block.
    """
    final = corpus_dir(name, profile, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.parent / f".{profile}.lock"
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another build of {name} ({profile}) is running (lock {lock_path})") from None
        for stale in final.parent.glob(f".{profile}.partial-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        partial = final.parent / f".{profile}.partial-{os.getpid()}"
        partial.mkdir()
        try:
            yield partial
            if not (partial / MANIFEST).is_file():
                raise RuntimeError(f"build of {name} ({profile}) wrote no {MANIFEST}")
            if final.exists():
                if not force and is_built(name, profile, root):
                    raise FileExistsError(f"{final} exists; use --force to rebuild")
                shutil.rmtree(final)
            os.replace(partial, final)
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)


def finish_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Checksum every file, then write ``manifest.json`` (the last file of a build)."""
    content = write_checksums(folder)
    manifest = {
        "devicelab_version": __version__,
        "schema": 1,
        "built": _dt.datetime.now().isoformat(timespec="seconds"),
        **manifest,
        "content_sha256": content,
    }
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, folder / MANIFEST)
    return manifest
