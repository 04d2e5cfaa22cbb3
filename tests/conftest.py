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
