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


@pytest.fixture
def face_api_root() -> Path:
    """Root of the cached face-api asset (``<root>/package/model``, ``<root>/package/demo``)."""
    return require_asset("face-api")
