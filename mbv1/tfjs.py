"""Read TensorFlow.js weight manifests (``*-weights_manifest.json`` + ``.bin`` shards).

A manifest is a list of groups ``{"paths": [...], "weights": [...]}``. The shard files of a group
(paths relative to the manifest) are concatenated, and the group's tensors lie back to back in
that buffer, in manifest order, little-endian. Each weight is ``{name, shape, dtype}`` plus an
optional ``quantization``:

* ``{"dtype": "uint8" | "uint16", "scale": s, "min": m}``: stored as unsigned integers,
  value = q * s + m (computed in float64 then rounded to float32, exactly as tfjs does; rounded
  to the nearest integer for ``int32`` weights);
* ``{"dtype": "float16"}``: stored as IEEE half floats.

This mirrors ``tf.io.weightsLoaderFactory`` / ``decodeWeight`` of tfjs-core 4.x. Tensors keep the
manifest's (TensorFlow) layout: conv kernels HWIO, depthwise kernels (H, W, C, multiplier).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["load_tfjs_weights", "read_manifest"]

# bytes per stored value, as tfjs-core's DTYPE_VALUE_SIZE_MAP
_STORED = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
}


def read_manifest(manifest_json_path: str | os.PathLike) -> list[dict]:
    """Parse and minimally validate a tfjs weights manifest (a list of groups)."""
    mpath = Path(manifest_json_path)
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise MBV1Error(f"tfjs manifest {mpath} does not exist") from None
    except (OSError, ValueError) as e:
        raise MBV1Error(f"cannot read tfjs manifest {mpath}: {e}") from None
    if isinstance(manifest, dict) and "weightsManifest" in manifest:  # a model.json
        manifest = manifest["weightsManifest"]
    if not isinstance(manifest, list) or not all(
        isinstance(g, dict)
        and isinstance(g.get("paths"), list)
        and isinstance(g.get("weights"), list)
        for g in manifest
    ):
        raise MBV1Error(
            f"{mpath} is not a tfjs weights manifest (expected a list of {{paths, weights}})"
        )
    return manifest


def _decode(spec: dict, raw: memoryview, where: str) -> np.ndarray:
    name = spec["name"]
    shape = tuple(int(d) for d in spec.get("shape", []))
    dtype = spec.get("dtype", "float32")
    quant = spec.get("quantization")
    count = math.prod(shape)
    stored = quant["dtype"] if quant else dtype
    if stored not in _STORED or dtype not in ("float32", "int32", "bool"):
        raise MBV1Error(f"{where}: weight '{name}' has unsupported dtype {dtype}/{stored}")
    q = np.frombuffer(raw, dtype=_STORED[stored], count=count)
    if quant is None:
        if dtype == "bool":
            return q.astype(bool).reshape(shape)
        return q.astype(q.dtype.newbyteorder("=")).reshape(shape)
    if stored in ("uint8", "uint16"):
        if "scale" not in quant or "min" not in quant:
            raise MBV1Error(f"{where}: weight '{name}' is {stored}-quantized without scale/min")
        v = q.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        if dtype == "int32":
            return np.floor(v + 0.5).astype(np.int32).reshape(shape)  # JS Math.round
        if dtype == "float32":
            return v.astype(np.float32).reshape(shape)
    elif stored == "float16" and dtype == "float32":
        return q.astype(np.float32).reshape(shape)
    raise MBV1Error(f"{where}: weight '{name}': quantization {stored} unsupported for {dtype}")


def _nbytes(spec: dict) -> int:
    quant = spec.get("quantization")
    stored = quant["dtype"] if quant else spec.get("dtype", "float32")
    if stored not in _STORED:
        raise MBV1Error(f"weight '{spec.get('name')}' has unsupported dtype {stored}")
    return _STORED[stored].itemsize * math.prod(int(d) for d in spec.get("shape", []))


def load_tfjs_weights(manifest_json_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every weight of a tfjs manifest as numpy arrays (float32 unless int32/bool).

    Shard paths are resolved relative to the manifest's directory. Raises :class:`MBV1Error`
    on a missing shard, a shard shorter than its tensors, or an unsupported dtype.
    """
    mpath = Path(manifest_json_path)
    manifest = read_manifest(mpath)
    base = mpath.parent
    out: dict[str, np.ndarray] = {}
    for gi, group in enumerate(manifest):
        chunks = []
        for rel in group["paths"]:
            shard = base / str(rel).lstrip("/")
            try:
                chunks.append(shard.read_bytes())
            except FileNotFoundError:
                raise MBV1Error(
                    f"tfjs weights file {shard} (listed in {mpath.name}) does not exist; "
                    "fetch the model again (`mbv1 weights pull`)"
                ) from None
            except OSError as e:
                raise MBV1Error(f"cannot read tfjs weights file {shard}: {e}") from None
        buf = memoryview(b"".join(chunks))
        where = f"{mpath.name} group {gi} ({', '.join(map(str, group['paths']))})"
        offset = 0
        for spec in group["weights"]:
            n = _nbytes(spec)
            if offset + n > len(buf):
                raise MBV1Error(
                    f"{where}: truncated weights: '{spec['name']}' needs bytes "
                    f"{offset}..{offset + n} but the file has {len(buf)}; "
                    "fetch the model again (`mbv1 weights pull`)"
                )
            out[spec["name"]] = _decode(spec, buf[offset : offset + n], where)
            offset += n
    return out
