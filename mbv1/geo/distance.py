"""Great-circle distance and spherical means (paper Table 11: haversine, R = 6371 km).

Every function takes numpy arrays (or scalars) or torch tensors and answers in the same kind,
broadcasting like the underlying library. Angles are degrees, distances kilometres.
"""

from __future__ import annotations

import math

import numpy as np
import torch

EARTH_RADIUS_KM = 6371.0  # the mean radius used by PlaNet and the paper's Table 11


def haversine_km(lat1, lon1, lat2, lon2, radius_km: float = EARTH_RADIUS_KM):
    """Great-circle distance by the haversine formula.

    Args:
        lat1, lon1: first points, degrees; any broadcastable shapes.
        lat2, lon2: second points, degrees.
        radius_km: sphere radius (6371 km as in the paper; geopy's default is 6371.009).

    Returns:
        Distances in km with the broadcast shape: a torch tensor if any input is one (float64
        inputs stay float64), else a numpy array (a float for scalar inputs).
    """
    if any(isinstance(a, torch.Tensor) for a in (lat1, lon1, lat2, lon2)):
        ref = next(a for a in (lat1, lon1, lat2, lon2) if isinstance(a, torch.Tensor))
        dtype = ref.dtype if ref.is_floating_point() else torch.float32
        lat1, lon1, lat2, lon2 = (torch.as_tensor(a, dtype=dtype, device=ref.device)
                                  for a in (lat1, lon1, lat2, lon2))
        lib = torch
    else:
        lat1, lon1, lat2, lon2 = (np.asarray(a, dtype=np.float64) for a in (lat1, lon1, lat2, lon2))
        lib = np
    rad = math.pi / 180.0
    dlat = (lat2 - lat1) * rad
    dlon = (lon2 - lon1) * rad
    a = lib.sin(dlat / 2) ** 2 + lib.cos(lat1 * rad) * lib.cos(lat2 * rad) * lib.sin(dlon / 2) ** 2
    # Rounding can push a a hair outside [0, 1] for antipodal points: clip before the sqrt.
    a = lib.clip(a, 0.0, 1.0)
    d = 2.0 * radius_km * lib.arcsin(lib.sqrt(a))
    return d if lib is torch or d.ndim else float(d)


def to_xyz(lat, lon) -> np.ndarray:
    """Unit vectors ``[..., 3]`` of points in degrees (numpy)."""
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def from_xyz(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) in degrees of vectors ``[..., 3]`` (need not be unit length, must be non-zero)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def spherical_mean(lat, lon, groups: np.ndarray | None = None, num_groups: int | None = None):
    """Mean location of points: the normalised mean of their unit vectors.

    Unlike averaging degrees, this is right across the ±180° meridian and near the poles.

    Args:
        lat, lon: ``[N]`` degrees.
        groups: optional ``[N]`` int group index in ``[0, num_groups)``; the mean is per group.
        num_groups: number of groups (default ``groups.max() + 1``).

    Returns:
        (lat, lon): floats, or ``[num_groups]`` arrays with NaN for empty groups (and for groups
        whose vectors cancel exactly).
    """
    xyz = to_xyz(np.ravel(lat), np.ravel(lon))
    if groups is None:
        s = xyz.sum(axis=0)
        if not np.any(s):
            return math.nan, math.nan
        la, lo = from_xyz(s)
        return float(la), float(lo)
    groups = np.asarray(groups, dtype=np.int64).ravel()
    num_groups = int(groups.max()) + 1 if num_groups is None else num_groups
    sums = np.zeros((num_groups, 3))
    np.add.at(sums, groups, xyz)
    la, lo = from_xyz(sums)
    empty = ~np.any(sums, axis=1)
    la[empty] = np.nan
    lo[empty] = np.nan
    return la, lo
