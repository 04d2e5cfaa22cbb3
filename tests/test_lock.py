"""The environment that runs the suite is the lock (requirements.lock, made by `make lock`).

A fresh machine must install exactly what CI tested: every locked package at its locked version,
and nothing the lock does not name (besides pip and mbv1 itself). A drifted package fails with
one line that names it.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
# Installed by venv/pip themselves or by `pip install -e .`, not by the lock.
NOT_LOCKED = {"pip", "mbv1"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(text: str) -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` requirement line of a uv/pip-tools lock."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            pins[_canonical(m.group(1))] = m.group(3)
    return pins


def installed_versions() -> dict[str, str]:
    """What the environment installed: the distributions of its site-packages. Libraries that
    vendor packages can put their ``_vendor`` folder on ``sys.path`` (setuptools does when
    imported, e.g. by ``torch.utils.cpp_extension`` under NNCF); those copies are not installed
    packages, so one metadata search over ``site.getsitepackages()`` decides."""
    import site

    paths = [p for p in site.getsitepackages() if Path(p).is_dir()]
    return {_canonical(d.metadata["Name"]): d.version
            for d in metadata.distributions(path=paths)}


def drift(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per package whose installed state differs from the lock."""
    lines = []
    for name, want in sorted(locked.items()):
        have = installed.get(name)
        # Local version labels (torch 2.14.1+cu130) are the same release as the locked one.
        if have is None:
            lines.append(f"{name}: locked {want}, not installed")
        elif have.split("+")[0] != want.split("+")[0]:
            lines.append(f"{name}: locked {want}, installed {have}")
    for name in sorted(set(installed) - set(locked) - NOT_LOCKED):
        lines.append(f"{name}: installed {installed[name]}, not in the lock")
    return lines


def test_lock_pins_every_package_with_hashes():
    text = LOCK.read_text()
    pins = locked_versions(text)
    assert {"torch", "torchvision", "opencv-python-headless", "numpy"} <= set(pins)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    unhashed = [b.split()[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
    assert not unhashed, f"lock entries without a hash: {unhashed}"


def test_lock_keeps_an_opencv_with_the_tensorflow_importer():
    """The FaceNet agreement test needs cv2.dnn.readNetFromTensorflow (gone in OpenCV 5.1)."""
    major, minor = (int(x) for x in locked_versions(LOCK.read_text())["opencv-python-headless"]
                    .split(".")[:2])
    assert (major, minor) < (5, 1)


def test_installed_environment_equals_the_lock():
    problems = drift(locked_versions(LOCK.read_text()), installed_versions())
    if problems:
        pytest.fail("environment differs from requirements.lock (run `make setup`): "
                    + "; ".join(problems), pytrace=False)


def test_drift_names_the_package():
    locked = {"numpy": "2.4.6", "torch": "2.14.1"}
    assert drift(locked, {"numpy": "2.4.6", "torch": "2.14.1+cu130", "pip": "23"}) == []
    assert drift(locked, {"numpy": "2.5.0", "torch": "2.14.1"}) == [
        "numpy: locked 2.4.6, installed 2.5.0"]
    assert drift(locked, {"torch": "2.14.1", "extra": "1.0"}) == [
        "numpy: locked 2.4.6, not installed", "extra: installed 1.0, not in the lock"]
