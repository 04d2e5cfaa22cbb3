"""Constants of a frozen TensorFlow GraphDef (``.pb``) as numpy arrays, without TensorFlow:
the GraphDef protos that ``tensorboard`` ships, parsed with ``protobuf``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mbv1.errors import MBV1Error

__all__ = ["read_graph_constants"]

# TF DataType enum -> numpy dtype (tensorflow/core/framework/types.proto).
_DTYPES = {
    1: np.float32,  # DT_FLOAT
    2: np.float64,  # DT_DOUBLE
    3: np.int32,  # DT_INT32
    4: np.uint8,  # DT_UINT8
    5: np.int16,  # DT_INT16
    6: np.int8,  # DT_INT8
    9: np.int64,  # DT_INT64
    10: np.bool_,  # DT_BOOL
    17: np.uint16,  # DT_UINT16
    19: np.float16,  # DT_HALF
    22: np.uint32,  # DT_UINT32
    23: np.uint64,  # DT_UINT64
}
# Which repeated *_val field holds each dtype when tensor_content is empty.
_VAL_FIELD = {
    1: "float_val",
    2: "double_val",
    3: "int_val",
    4: "int_val",
    5: "int_val",
    6: "int_val",
    9: "int64_val",
    10: "bool_val",
    17: "int_val",
    19: "half_val",
    22: "uint32_val",
    23: "uint64_val",
}


def _parse_graphdef(pb_path: str | Path):
    try:
        from tensorboard.compat.proto import graph_pb2
    except ImportError as e:  # pragma: no cover - tensorboard is a declared dependency
        raise MBV1Error(f"reading a TF GraphDef needs the 'tensorboard' package ({e})") from None
    from google.protobuf.message import DecodeError

    p = Path(pb_path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise MBV1Error(f"cannot read TF graph {p}: {e.strerror or e}") from None
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise MBV1Error(f"{p} is not a TF GraphDef protobuf (corrupt or truncated?): {e}") from None
    if not graph.node:
        raise MBV1Error(f"{p} is not a TF GraphDef protobuf (no nodes; corrupt or truncated?)")
    return graph


def _decode_tensor(name: str, t) -> np.ndarray | None:
    """A TensorProto as a numpy array; None for dtypes without a numpy form (e.g. DT_STRING)."""
    dtype = _DTYPES.get(t.dtype)
    if dtype is None:
        return None
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if t.tensor_content:
        raw = t.tensor_content
        if len(raw) != size * np.dtype(dtype).itemsize:
            raise MBV1Error(
                f"TF constant '{name}': {len(raw)} bytes of content for shape {list(shape)} "
                f"({np.dtype(dtype).name}); the graph is corrupt"
            )
        # tensor_content is little-endian; copy so the array owns writable memory.
        return (
            np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
        )
    vals = getattr(t, _VAL_FIELD[t.dtype])
    if t.dtype == 19:  # DT_HALF: stored as the uint16 bit patterns in an int32 field
        arr = np.asarray(list(vals), dtype=np.uint16).view(np.float16)
    else:
        arr = np.asarray(list(vals), dtype=dtype)
    if arr.size == size:
        return arr.reshape(shape)
    if arr.size == 0:
        return np.zeros(shape, dtype=dtype)
    if arr.size > size:
        raise MBV1Error(
            f"TF constant '{name}': {arr.size} values for shape {list(shape)}; the graph is corrupt"
        )
    # TF semantics: a short value list is padded with its last element (a splat when it has one).
    out = np.empty(size, dtype=dtype)
    out[: arr.size] = arr
    out[arr.size :] = arr[-1]
    return out.reshape(shape)


def read_graph_constants(pb_path: str | Path) -> dict[str, np.ndarray]:
    """All ``Const`` nodes of a frozen TF GraphDef as ``{node name: array}``, without TensorFlow.

    Values come from the node's ``value`` attr (TF's name for a Const's tensor; ``tensor`` is
    accepted too): ``tensor_content`` bytes, or the typed ``*_val`` list (a short list is padded
    with its last element, as TF does). Constants of dtypes numpy cannot hold (strings, resources)
    are left out. A missing, unreadable or corrupt file raises a one-line :class:`MBV1Error`.
    """
    graph = _parse_graphdef(pb_path)
    out: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op != "Const":
            continue
        attr = node.attr.get("value") or node.attr.get("tensor")
        if attr is None or not attr.HasField("tensor"):
            raise MBV1Error(f"TF constant '{node.name}' has no tensor value; the graph is corrupt")
        arr = _decode_tensor(node.name, attr.tensor)
        if arr is not None:
            out[node.name] = arr
    return out


# --------------------------------------------------------------------------- name mapping
