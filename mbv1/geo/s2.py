"""Vectorised S2 cell ids (Google's S2 geometry) for arrays of lat/lon, in numpy.

s2sphere converts one point at a time in pure Python (~10 µs a point); PlaNet-sized sets
(millions of photos) need whole arrays. This module follows s2sphere's ``CellId.from_lat_lng``
step for step (quadratic projection, Hilbert curve through the same 4-bit lookup table), so
ids agree bit for bit; a test checks it against s2sphere on random points. Ids are ``uint64``.
"""

from __future__ import annotations

import numpy as np
from s2sphere.sphere import LOOKUP_POS

MAX_LEVEL = 30
POS_BITS = 2 * MAX_LEVEL + 1
MAX_SIZE = 1 << MAX_LEVEL
_LOOKUP_BITS = 4
_SWAP_MASK = 0x01
_INVERT_MASK = 0x02
_LOOKUP_POS = np.asarray(LOOKUP_POS, dtype=np.int64)


def latlon_to_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Unit vectors of points given in degrees.

    Args:
        lat, lon: arrays of the same shape ``[...]``, degrees.

    Returns:
        ``[..., 3]`` float64 (x towards lat 0 lon 0, z towards the north pole).
    """
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    theta = np.radians(np.asarray(lon, dtype=np.float64))
    cosphi = np.cos(phi)
    return np.stack([np.cos(theta) * cosphi, np.sin(theta) * cosphi, np.sin(phi)], axis=-1)


def _face_uv(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    # s2sphere's largest_abs_component, including its tie-breaking.
    face = np.where(ax > ay, np.where(ax > az, 0, 2), np.where(ay > az, 1, 2))
    comp = np.choose(face, [x, y, z])
    face = np.where(comp < 0, face + 3, face)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.select([face == 0, face == 1, face == 2, face == 3, face == 4],
                      [y / x, -x / y, -x / z, z / x, z / y], -y / z)
        v = np.select([face == 0, face == 1, face == 2, face == 3, face == 4],
                      [z / x, z / y, -y / z, y / x, -x / y], -x / z)
    return face.astype(np.int64), u, v


def _uv_to_st(u: np.ndarray) -> np.ndarray:
    # Quadratic projection (S2's default); abs() keeps sqrt's argument positive on both branches.
    root = 0.5 * np.sqrt(1 + 3 * np.abs(u))
    return np.where(u >= 0, root, 1 - root)


def _st_to_ij(s: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(MAX_SIZE * s), 0, MAX_SIZE - 1).astype(np.int64)


def leaf_ids(lat, lon) -> np.ndarray:
    """Leaf (level-30) S2 cell ids of points.

    Args:
        lat, lon: degrees, array-likes of the same shape ``[N]`` (or scalars); must be finite.

    Returns:
        ``[N]`` uint64 cell ids, equal to s2sphere's ``CellId.from_lat_lng(...).id()``.
    """
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    if lat.shape != lon.shape:
        raise ValueError(f"lat and lon differ in shape: {lat.shape} vs {lon.shape}")
    face, u, v = _face_uv(latlon_to_xyz(lat, lon))
    i = _st_to_ij(_uv_to_st(u))
    j = _st_to_ij(_uv_to_st(v))
    n = face << (POS_BITS - 1)
    bits = face & _SWAP_MASK
    mask = (1 << _LOOKUP_BITS) - 1
    for k in range(7, -1, -1):
        bits = bits + (((i >> (k * _LOOKUP_BITS)) & mask) << (_LOOKUP_BITS + 2))
        bits = bits + (((j >> (k * _LOOKUP_BITS)) & mask) << 2)
        bits = _LOOKUP_POS[bits]
        n = n | ((bits >> 2) << (k * 2 * _LOOKUP_BITS))
        bits = bits & (_SWAP_MASK | _INVERT_MASK)
    # n < 2**63 fits int64; the id 2n+1 needs the full unsigned range.
    return n.astype(np.uint64) * np.uint64(2) + np.uint64(1)


def lsb_for_level(level: int) -> np.uint64:
    """The lowest set bit of every cell id at ``level``."""
    return np.uint64(1 << (2 * (MAX_LEVEL - level)))


def parent_ids(ids: np.ndarray, level: int) -> np.ndarray:
    """The ancestor at ``level`` of each id (ids must be at ``level`` or finer), ``[N]`` uint64."""
    lsb = lsb_for_level(level)
    return (ids & ~(lsb - np.uint64(1))) | lsb


def range_min(ids: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Smallest leaf id inside each cell, ``[N]`` uint64."""
    lsb = np.uint64(1) << (np.uint64(2) * (np.uint64(MAX_LEVEL) - levels.astype(np.uint64)))
    return ids - (lsb - np.uint64(1))


def range_max(ids: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Largest leaf id inside each cell, ``[N]`` uint64."""
    lsb = np.uint64(1) << (np.uint64(2) * (np.uint64(MAX_LEVEL) - levels.astype(np.uint64)))
    return ids + (lsb - np.uint64(1))


def to_token(cell_id: int) -> str:
    """S2 token: the id in hex without trailing zeros (``"X"`` for id 0), as s2sphere writes it."""
    cell_id = int(cell_id)
    return format(cell_id, "016x").rstrip("0") or "X"


def from_token(token: str) -> int:
    """Inverse of :func:`to_token`; raises ValueError on a malformed token."""
    if token == "X":
        return 0
    if not 1 <= len(token) <= 16 or any(c not in "0123456789abcdefABCDEF" for c in token):
        raise ValueError(f"not an S2 token: {token!r}")
    return int(token.ljust(16, "0"), 16)


def is_valid(cell_id: int) -> bool:
    """Whether an int is a valid S2 cell id: face 0–5 and its lowest set bit at an even place."""
    cell_id = int(cell_id)
    lsb = cell_id & -cell_id
    return 0 < cell_id < (1 << 64) and (cell_id >> POS_BITS) < 6 and \
        (lsb & 0x1555555555555555) != 0


def level_of(cell_id: int) -> int:
    """Level (0 = face … 30 = leaf) of a valid cell id."""
    cell_id = int(cell_id)
    lsb = cell_id & -cell_id
    return MAX_LEVEL - (lsb.bit_length() - 1) // 2
