"""Checkpoints: a dict of tensors and plain Python values, loadable with ``weights_only=True``.

Layout (``FORMAT_VERSION`` 1)::

    {"format": "mbv1", "format_version": 1, "task": "detection", "config": {...resolved config},
     "meta": {num_params, mult_adds, input_size, mean, std, activation, labels, metrics, source},
     "model": state_dict, ...training state (optimizer, scheduler, epoch, step, rng) when resuming}

Written to a temporary file in the same folder, then renamed, so a crash never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import difflib
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mbv1.errors import MBV1Error, is_torch_write_failure, write_error

FORMAT = "mbv1"
FORMAT_VERSION = 1


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` (or write ``write`` itself, a ``str`` or ``bytes``) then rename
    the temporary file onto ``path``.

    Raises:
        WriteError: one line naming the file and why (disk full, a part of the path is a
            file, permission, read-only), when the folder or the file cannot be written; the
            file at ``path`` is then as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    try:
        if isinstance(write, str | bytes | bytearray):
            content = write
            Path(tmp).write_bytes(content.encode() if isinstance(content, str) else content)
        else:
            write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) or is_torch_write_failure(e):
            raise write_error(path, e) from None
        raise
    return path


def save_checkpoint(path: str | os.PathLike, *, task: str, model: nn.Module | dict,
                    config: dict, meta: dict, **extra: Any) -> Path:
    """Save a checkpoint atomically. ``extra`` holds training state (optimizer, epoch, ...).
    A full disk or an unwritable folder is a one-line :class:`~mbv1.errors.WriteError`."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": task,
               "config": config, "meta": meta, "model": state, **extra}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: a full disk is an OSError with its errno
            torch.save(payload, f)

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike, task: str | tuple[str, ...] | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a checkpoint; its task must be ``task`` (e.g. ``detection``, or one of
    a tuple of tasks) when given.

    Raises:
        MBV1Error: missing, empty or corrupt file; not an mbv1 checkpoint; a newer format; a
            checkpoint of another task.
    """
    path = Path(path)
    if not path.exists():
        raise MBV1Error(f"checkpoint not found: {path}")
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return load_checkpoint(path / name, task, map_location)
        raise MBV1Error(f"{path} is a folder without best.pt or last.pt: pass a checkpoint file")
    if path.stat().st_size == 0:
        raise MBV1Error(f"checkpoint {path} is empty (0 bytes): the file was not fully written; "
                        "use another checkpoint or retrain")
    try:
        with warnings.catch_warnings():  # torch warns of odd pickle protocols in random bytes
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError,
            TypeError, AttributeError, IndexError, KeyError, OSError) as e:
        raise MBV1Error(f"{path} is not a readable mbv1 checkpoint: {_unreadable(path, e)}"
                        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise MBV1Error(f"{path} is not an mbv1 checkpoint (no 'format: mbv1' field); convert "
                        "foreign weights with `mbv1 weights convert`")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise MBV1Error(f"{path} has checkpoint format {ckpt['format_version']}, newer than this "
                        f"mbv1 reads ({FORMAT_VERSION}): upgrade mbv1")
    tasks = (task,) if isinstance(task, str) else task
    if tasks is not None and ckpt.get("task") not in tasks:
        want = " or ".join(repr(t) for t in tasks)
        raise MBV1Error(f"{path} is a {ckpt.get('task')!r} checkpoint, but this command needs a "
                        f"{want} one: pass the weights of a {tasks[0]} run")
    return ckpt


def _unreadable(path: Path, e: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in one clause with what to do
    (torch's own text is a paragraph that suggests ``weights_only=False``: never here)."""
    text = str(e)
    hostile = re.search(r"GLOBAL (\S+)", text)
    if hostile:
        return (f"it holds Python code ({hostile.group(1)}) that would run when unpickled, and "
                "mbv1 loads plain tensors and values only; use weights you trust, saved by mbv1 "
                "or converted with `mbv1 weights convert`")
    if isinstance(e, OSError) and not isinstance(e, zipfile.BadZipFile):
        return f"{e.strerror or text.strip()[:120]}"
    if not zipfile.is_zipfile(path):
        code = _pickled_code(path)
        if code:
            return (f"a pickle holding Python code ({code}) that would run when unpickled; mbv1 "
                    "never loads it: pass an mbv1 .pt checkpoint")
        return ("not a PyTorch checkpoint (random or foreign bytes, or a file cut short); pass "
                "an mbv1 .pt checkpoint or run folder")
    if "weights only" in text.lower() or isinstance(e, pickle.UnpicklingError):
        return ("a PyTorch file holding Python objects besides tensors, which mbv1 does not "
                "load; pass an mbv1 checkpoint or convert the weights with `mbv1 weights "
                "convert`")
    return ("the archive is damaged or truncated (an interrupted copy or download?); copy it "
            "again or use another checkpoint")


def _pickled_code(path: Path) -> str | None:
    """The first callable a plain pickle names (``posix.system``), read without unpickling."""
    import pickletools

    strings: list[str] = []
    try:
        with path.open("rb") as f:
            for n, (op, arg, _) in enumerate(pickletools.genops(f)):
                if n > 100_000:
                    break
                if op.name in ("GLOBAL", "INST"):
                    return str(arg).replace(" ", ".")
                if op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    return f"{strings[-2]}.{strings[-1]}"
                if isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # noqa: BLE001  not a pickle (or a broken one): nothing named
        return None
    return None


@dataclass
class Loaded:
    """A model rebuilt from its checkpoint (:func:`load_model`), in eval mode on ``device``."""

    model: nn.Module
    task: str
    meta: dict
    config: dict
    path: Path


def load_model(path: str | os.PathLike, tasks: str | tuple[str, ...],
               build: Callable[[dict, dict], nn.Module], device: str | torch.device = "cpu",
               upgrade: Callable[[dict], dict] | None = None) -> Loaded:
    """The one way a checkpoint becomes a model: check its task, rebuild the module with the
    domain's ``build(meta, model_settings)`` (``model_settings``: the config's ``model``
    section), load the weights strictly. ``upgrade(ckpt)`` migrates an older layout first.
    Training, ``mbv1 eval``, the predictors and export all build through the same functions."""
    ckpt = load_checkpoint(path, tasks)
    if upgrade is not None:
        ckpt = upgrade(ckpt)
    meta, config = dict(ckpt.get("meta") or {}), dict(ckpt.get("config") or {})
    model = build(meta, dict(config.get("model") or {}))
    load_model_state(model, ckpt["model"], str(path))
    return Loaded(model.eval().to(device), str(ckpt["task"]), meta, config, Path(path))


def load_model_state(model: nn.Module, state: dict, source: str = "checkpoint") -> None:
    """Load a state dict strictly, turning key and shape mismatches into one clear line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {shapes[0]})")
        if missing:
            hint = difflib.get_close_matches(missing[0], unexpected, n=1)
            parts.append(f"{len(missing)} missing keys (first: {missing[0]}"
                         + (f", did the checkpoint call it {hint[0]}?)" if hint else ")"))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise MBV1Error(f"{source} does not fit this model: " + "; ".join(parts)
                        + ". Check --alpha/--num-classes or use the checkpoint's own config")
    model.load_state_dict(state)
