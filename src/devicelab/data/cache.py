"""The corpus cache: atomic builds, a lock per corpus, checksums and ``manifest.json``.

A build writes into ``NAME/.PROFILE.partial-<pid>/``; the manifest is written last and the folder is then
renamed to ``NAME/PROFILE/``. A corpus counts as built only when ``NAME/PROFILE/manifest.json`` exists, so an
interrupted build (at any point) is never mistaken for a complete one and is redone by the next build.

The lock file ``NAME/.PROFILE.lock`` holds the PID of the build that owns it; a build that finds the PID of a
build that is gone takes the lock over and says so. The manifest records the number and total size of the
files, so a later build notices a changed corpus cheaply (:func:`check_unchanged`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devicelab import __version__
from devicelab.core.paths import data_root, ensure_folder
from devicelab.core.stages import pid_alive

MANIFEST = "manifest.json"
CHECKSUMS = "checksums.sha256"


class BuildLockError(RuntimeError):
    """Another build holds the lock of a corpus; the message names the lock file and the holder's PIDs."""


class CorpusChangedError(RuntimeError):
    """A built corpus no longer matches its manifest (files added, removed or resized)."""


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


def _content_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of the files a checksum covers: all but the manifest, checksums, features/."""
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in (MANIFEST, CHECKSUMS) and not rel.startswith("features/"):
            yield rel, p


def content_size(folder: Path) -> dict[str, int]:
    """``{"file_count": N, "total_bytes": B}`` of the files a checksum covers (cheap: one stat per file)."""
    sizes = [p.stat().st_size for _, p in _content_files(folder)]
    return {"file_count": len(sizes), "total_bytes": sum(sizes)}


def check_unchanged(name: str, profile: str, root: Path | None = None) -> None:
    """Raise :class:`CorpusChangedError` when a built corpus's file count or total size differs from its
    manifest (older manifests without sizes: when a file listed in ``checksums.sha256`` is missing)."""
    folder = corpus_dir(name, profile, root)
    manifest = read_manifest(name, profile, root)
    expected = manifest.get("content_size")
    if expected is not None:
        found = content_size(folder)
        if found == expected:
            return
        detail = (
            f"{found['file_count']} files, {found['total_bytes']} bytes; the manifest says "
            f"{expected['file_count']} files, {expected['total_bytes']} bytes"
        )
    else:
        listed = [line.split("  ", 1)[1] for line in (folder / CHECKSUMS).read_text().splitlines() if line]
        missing = [rel for rel in listed if not (folder / rel).is_file()]
        if not missing:
            return
        detail = f"{len(missing)} listed files are missing, e.g. {missing[0]}"
    raise CorpusChangedError(
        f"{folder}: the corpus was changed after it was built ({detail}); `devicelab data verify {name} "
        f"--profile {profile}` lists the files, `devicelab data build {name} --profile {profile} --force` "
        "rebuilds it"
    )


def write_checksums(folder: Path) -> str:
    """Write ``checksums.sha256`` (sorted, relative paths) and return the sha256 of that file's content."""
    lines = [f"{sha256_file(p)}  {rel}" for rel, p in _content_files(folder)]
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


def _lock_holders(lock_path: Path) -> list[int]:
    """PIDs of this user's processes that have ``lock_path`` open (Linux ``/proc``; [] elsewhere)."""
    target, holders = os.path.realpath(lock_path), []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                holders.append(int(proc.name))
        except OSError:
            continue
    return sorted(pid for pid in holders if pid != os.getpid())


def _read_owner(lock_path: Path) -> int | None:
    try:
        text = lock_path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def _build_lock(lock_path: Path, what: str, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the build lock ``lock_path`` (flock; the owner's PID written inside) for the block."""
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(lock_path)
            if owner is not None and pid_alive(owner):
                raise BuildLockError(
                    f"another build of {what} is running (PID {owner}, lock {lock_path})"
                ) from None
            holders = ", ".join(map(str, _lock_holders(lock_path))) or "unknown"
            raise BuildLockError(
                f"the lock {lock_path} of {what} is held by processes left by build PID {owner}, which is "
                f"gone (PIDs {holders}); stop them and build again"
            ) from None
        owner = _read_owner(lock_path)
        if owner is not None and owner != os.getpid():
            log(f"taking over the build lock of {what} from build PID {owner}, which is gone ({lock_path})")
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            lock.flush()


@contextlib.contextmanager
def atomic_build(
    name: str,
    profile: str,
    *,
    force: bool = False,
    root: Path | None = None,
    log: Callable[[str], None] = print,
) -> Iterator[Path]:
    """Yield a fresh partial folder; on normal exit it becomes ``NAME/PROFILE``, on error it is removed.

    The caller writes the manifest with :func:`finish_manifest` inside the block.
    """
    final = corpus_dir(name, profile, root or ensure_folder(data_root(), "DEVICELAB_DATA"))
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.parent / f".{profile}.lock"
    with _build_lock(lock_path, f"{name} ({profile})", log):
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
        "content_size": content_size(folder),
    }
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, folder / MANIFEST)
    return manifest
