"""Shared test helpers.

Tests that need the real cached assets (fetched by `mbv1 weights pull` / `make setup`) are
marked ``@pytest.mark.assets`` and call :func:`require_asset`: they are skipped when the asset is
not in the cache, unless ``MBV1_REQUIRE_ASSETS=1``, in which case a missing asset fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_asset(name: str) -> Path:
    """Root of cached asset ``name``; skip (or fail with MBV1_REQUIRE_ASSETS=1) if absent."""
    from mbv1 import assets

    if assets.is_fetched(name):
        return assets.asset_dir(name)
    msg = f"asset '{name}' is not in the cache {assets.cache_dir()} (run `mbv1 weights pull`)"
    if os.environ.get("MBV1_REQUIRE_ASSETS") == "1":
        pytest.fail(msg + " and MBV1_REQUIRE_ASSETS=1")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def face_api_root() -> Path:
    """Root of the cached face-api asset (``<root>/package/model``, ``<root>/package/demo``)."""
    return require_asset("face-api")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """pytest-xdist runs one worker per core: more than one torch thread per worker
    oversubscribes the cores (measured ~30x slower on 2 busy cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _no_lingering_sigchld_handler():
    """A DataLoader with worker processes leaves PyTorch's SIGCHLD handler installed for the
    rest of the process. Every xdist worker crash examined here (core dumps: SIGSEGV with
    si_code SI_KERNEL, i.e. a signal the kernel could not deliver, in the main thread just as a
    child process of a later test exited) came in a worker that had that handler. A test puts
    the default back after itself; torch.utils.data still checks its workers without it."""
    import signal

    yield
    if signal.getsignal(signal.SIGCHLD) not in (signal.SIG_DFL, None):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


@pytest.fixture
def mbv1_cli(monkeypatch, capsys):
    """Run the ``mbv1`` command line in this process (no interpreter start-up: seconds, not
    tens): ``run(*args) -> (exit code, stdout, stderr, warnings)``. An exception that the CLI
    did not turn into one line propagates and fails the test (a traceback for a user);
    ``warnings`` are the Python warnings it emitted (those print with a source line)."""
    import sys
    import warnings

    from mbv1.cli.main import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["mbv1", *map(str, args)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err, [str(w.message) for w in caught]

    return run


@pytest.fixture(autouse=True, scope="session")
def _export_cache(tmp_path_factory):
    """Files the exported-runtime backends write (``--backend auto``) go to a temporary folder,
    not the user's cache; one runtime thread per xdist worker, as torch."""
    before = {k: os.environ.get(k) for k in ("MBV1_EXPORT_CACHE", "MBV1_RUNTIME_THREADS")}
    os.environ["MBV1_EXPORT_CACHE"] = str(tmp_path_factory.mktemp("export-cache"))
    os.environ["MBV1_RUNTIME_THREADS"] = "1"
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


PEOPLE = {"ann": (230, 40, 40), "ben": (40, 230, 40), "cid": (40, 40, 230), "dot": (230, 230, 40)}


class _WholeImage:
    """A face finder stand-in: the whole photo is one face."""

    def describe(self):
        return {"detector": "whole-image", "policy": "box", "size": 32, "margin": 0}

    def __call__(self, rgb):
        import numpy as np

        from mbv1.faces.pipeline import Face

        box = np.array([0, 0, rgb.shape[1], rgb.shape[0]], np.float32)
        return [Face(box, 1.0, None, np.ascontiguousarray(rgb[:32, :32]), "box", np.eye(2, 3),
                     attr_crop=rgb, attr_box=(0, 0, rgb.shape[1], rgb.shape[0]))]


def synthetic_face_cache(root: Path):
    """A face crop cache of 4 identity folders x 5 photos under ``root``, with the teachers'
    targets written directly (gender/expression/age and a 512-d embedding that depend on the
    person, so a student can learn them): the face tasks without any real teacher."""
    import numpy as np
    from PIL import Image

    from mbv1.faces.cache import extract_faces
    from mbv1.faces.sources import source_specs

    rng = np.random.default_rng(0)
    for person, color in PEOPLE.items():
        (root / "data" / person).mkdir(parents=True)
        for k in range(5):
            img = np.clip(np.array(color) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / "data" / person / f"{k}.png")
    c = extract_faces(source_specs(str(root / "data")), root / "cache", _WholeImage())
    ids = np.array([r.id for r in c.records])
    person = np.array([list(PEOPLE).index(r.identity) for r in c.records])
    n = len(ids)
    g = np.where(person % 2 == 0, 0.9, 0.1)
    gender = np.stack([np.c_[g, 1 - g]] * 2, 1)
    expr = np.zeros((n, 7))
    expr[np.arange(n), person] = 0.8
    expr += 0.2 / 7
    expression = np.stack([expr, expr], 1)
    age = np.stack([20.0 + 10 * person] * 2, 1)
    np.savez(c.root / "targets-attr-face-api.npz", ids=ids, age=age, gender=gender,
             expression=expression)
    centers = rng.normal(size=(4, 512))
    emb = centers[person] + 0.1 * rng.normal(size=(n, 512))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    np.savez(c.root / "targets-emb-facenet.npz", ids=ids,
             embedding=np.stack([emb, emb], 1).astype(np.float32))
    return c


def randomise_bn(model) -> None:
    """Non-trivial BatchNorm statistics and affine parameters (seeded): a converter test then
    compares more than identity BatchNorms."""
    import torch

    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
