"""Fetch Debian packages without root: ``apt-get download`` (or a folder of .debs) and ``dpkg -x``.

Packages land in ``$DEVICELAB_DATA/_cache/deb/`` and unpack into ``_cache/root/NAME_VERSION/``; both are
reused offline by later builds. ``DEVICELAB_DEB_DIR`` (or ``DebFetcher(source="dir", deb_dir=...)``) reads
.debs from a folder instead of apt; tests use it with tiny packages made by ``dpkg-deb --build``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from devicelab.core.paths import data_root
from devicelab.data.cache import sha256_file


class MissingToolError(RuntimeError):
    """A system program is missing; the message names the Debian package that brings it."""


class PackageError(RuntimeError):
    """A package could not be fetched or unpacked; the message names it."""


def require_tool(tool: str, package: str) -> str:
    """Path of ``tool`` on PATH, or an error naming the Debian package to install."""
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(
            f"`{tool}` not found; install the Debian package `{package}` (sudo bash scripts/setup-system.sh)"
        )
    return path


@dataclass
class UnpackedPackage:
    name: str
    version: str
    deb: Path
    root: Path
    sha256: str
    size: int
    licences: list[str] = field(default_factory=list)

    def source_record(self, files_used: list[str] | None = None, non_free: bool = False) -> dict:
        """The manifest's ``sources`` entry for this package."""
        return {
            "kind": "deb",
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "licence": self.licences,
            "non_free": non_free,
            "files_used": files_used or [],
        }

    @property
    def multiarch_lib(self) -> Path:
        return self.root / "usr" / "lib" / (sysconfig.get_config_var("MULTIARCH") or "")


def _deb_field(deb: Path, name: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True)
    if out.returncode != 0:
        raise PackageError(f"{deb}: not a valid .deb ({out.stderr.strip() or 'dpkg-deb failed'})")
    return out.stdout.strip()


def read_licences(root: Path, package: str) -> list[str]:
    """The distinct ``License:`` short names of a package's machine-readable (DEP-5) copyright file.

    Free-form copyright files (no ``Format:`` header) give an empty list: their ``License:`` lines are prose.
    """
    copyright_file = root / "usr" / "share" / "doc" / package / "copyright"
    if not copyright_file.is_file():
        return []
    text = copyright_file.read_text(errors="replace")
    if not re.match(r"\s*Format:", text):
        return []
    found = re.findall(r"^License:[ \t]*(\S[^\n]*)$", text, flags=re.M)
    return sorted({f.strip() for f in found if len(f.strip()) < 60})


def _publish_unpacked(tmp: Path, root: Path) -> None:
    """Move a finished unpack to ``root`` unless another build got there first.

    A concurrent build may be reading ``root`` already: it is never deleted once complete (a half-written
    ``root`` without ``.unpacked`` is replaced). ``rename`` onto a non-empty folder fails, so two builds that
    finish together cannot both publish.
    """
    if not (root / ".unpacked").exists():
        if root.exists():
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.rename(tmp, root)
            return
        except OSError:
            if not (root / ".unpacked").exists():
                raise
    shutil.rmtree(tmp, ignore_errors=True)


class DebFetcher:
    """Download (or find) and unpack Debian packages into the cache."""

    def __init__(self, cache: Path | None = None, source: str | None = None, deb_dir: Path | None = None):
        self.cache = cache or data_root() / "_cache"
        env_dir = os.environ.get("DEVICELAB_DEB_DIR")
        self.source = source or ("dir" if (deb_dir or env_dir) else "apt")
        self.deb_dir = Path(deb_dir or env_dir or self.cache / "deb")
        (self.cache / "deb").mkdir(parents=True, exist_ok=True)
        (self.cache / "root").mkdir(parents=True, exist_ok=True)

    def _cached_deb(self, name: str, folder: Path) -> Path | None:
        found = sorted(folder.glob(f"{name}_*.deb"))
        return found[-1] if found else None

    def _download(self, name: str) -> Path:
        require_tool("apt-get", "apt")
        target = self.cache / "deb"
        out = subprocess.run(["apt-get", "download", name], cwd=target, capture_output=True, text=True)
        if out.returncode != 0:
            hint = ""
            if "Unable to locate" in out.stderr or "No packages found" in out.stderr:
                hint = (
                    " (not in the apt lists: run `apt-get update`; contrib/non-free packages need "
                    "`sudo bash scripts/setup-system.sh --nonfree`)"
                )
            raise PackageError(f"cannot download Debian package {name}{hint}: {out.stderr.strip()[-300:]}")
        deb = self._cached_deb(name, target)
        if deb is None:
            raise PackageError(f"apt-get download {name} wrote no .deb into {target}")
        return deb

    def deb_path(self, spec: str) -> tuple[str, Path]:
        """Locate the .deb of ``spec`` (``a|b``: the first alternative available wins)."""
        errors = []
        for name in spec.split("|"):
            name = name.strip()
            if self.source == "dir":
                deb = self._cached_deb(name, self.deb_dir)
                if deb is not None:
                    return name, deb
                errors.append(f"{name}: no {name}_*.deb in {self.deb_dir}")
                continue
            deb = self._cached_deb(name, self.cache / "deb")
            if deb is not None:
                return name, deb
            try:
                return name, self._download(name)
            except PackageError as e:
                errors.append(str(e))
        raise PackageError("; ".join(errors))

    def fetch(self, spec: str) -> UnpackedPackage:
        """Fetch and unpack one package (reusing the cache); returns where its files are."""
        name, deb = self.deb_path(spec)
        version = _deb_field(deb, "Version")
        root = self.cache / "root" / f"{name}_{version.replace(':', '%3a')}"
        if not (root / ".unpacked").exists():
            require_tool("dpkg", "dpkg")
            tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            out = subprocess.run(["dpkg", "-x", str(deb), str(tmp)], capture_output=True, text=True)
            if out.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise PackageError(f"{deb}: cannot unpack ({out.stderr.strip()[-300:]})")
            (tmp / ".unpacked").write_text(version)
            _publish_unpacked(tmp, root)
        return UnpackedPackage(
            name=name,
            version=version,
            deb=deb,
            root=root,
            sha256=sha256_file(deb),
            size=deb.stat().st_size,
            licences=read_licences(root, name),
        )

    def extract_member(self, spec: str, member: str, dest: Path) -> Path:
        """Extract one file of a big package (``dpkg-deb --fsys-tarfile | tar -x``) without unpacking all."""
        name, deb = self.deb_path(spec)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / member.lstrip("./")
        if target.exists():
            return target
        fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        tar = subprocess.run(
            ["tar", "-x", "-C", str(dest), f"./{member.lstrip('./')}"],
            stdin=fsys.stdout,
            capture_output=True,
            text=True,
        )
        fsys.wait()
        if tar.returncode != 0 or not target.exists():
            raise PackageError(f"{deb}: member {member} not found ({tar.stderr.strip()[-200:]})")
        return target
