"""Training configuration: typed dataclasses are the source of truth.

A run's config has four common sections (``train``, ``model``, ``data``, ``run``); a task may
replace one with a subclass (classification's ``data`` adds ``layout``) or add its own (e.g.
``ssd``) through ``Task.sections``. Values come, in increasing precedence, from the dataclass
defaults, the task's ``defaults``, a YAML recipe (``--config``), the CLI shortcuts (``--epochs``
...) and ``--set section.key=value``. Every value is type-checked against its field; an unknown
key fails with the nearest valid one (difflib); a number outside its key's range
(:mod:`mbv1.engine.bounds`) fails naming the range. ``--set`` values are parsed with
``yaml.safe_load`` (never ``eval``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from mbv1.engine import bounds
from mbv1.errors import MBV1Error


def choice(default: str, *choices: str) -> Any:
    """A string field restricted to ``choices`` (checked on every assignment)."""
    return field(default=default, metadata={"choices": choices})


@dataclass
class TrainConfig:
    """Optimisation and run-time settings (section ``train``).

    ``batch_size`` is the global batch over all processes (torchrun splits it evenly), so a
    recipe means the same thing on 1 or 8 GPUs. Learning rate schedules are in epochs
    (fractional; stepped every optimizer step).
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = choice("rmsprop", "rmsprop", "sgd", "adamw")
    lr: float = 0.045
    momentum: float = 0.9
    nesterov: bool = False
    rmsprop_decay: float = 0.9  # TF's RMSProp rho (Inception V3 / the paper)
    rmsprop_eps: float = 1.0  # TF-slim's opt_epsilon, inside the square root as in TF
    adam_betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = choice("tf-slim", "tf-slim", "step", "exponential", "cosine", "constant")
    decay_rate: float = 0.94  # step / tf-slim / exponential: lr *= decay_rate ...
    decay_epochs: float = 2.5  # ... every decay_epochs (TF-slim MobileNet: 0.94 per 2.5 epochs)
    milestones: list[float] = field(default_factory=list)  # step: decay at these epochs instead
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    warmup_epochs: float = 0.0  # linear warm-up from lr/steps to lr
    weight_decay: float = 4e-5  # L2 (rmsprop, sgd) or decoupled (adamw)
    no_decay_depthwise: bool = True  # the paper: little or no weight decay on depthwise filters
    no_decay_norm: bool = True  # norms and biases exempt
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    amp: bool = False  # mixed precision on CUDA (ignored on CPU)
    amp_dtype: str = choice("float16", "float16", "bfloat16")  # float16 uses a GradScaler
    ema: bool = False  # keep an exponential moving average of the weights (evaluated, saved)
    ema_decay: float = 0.9998
    seed: int = 0
    deterministic: bool = False
    workers: int = 4  # data-loader processes per training process
    threads: int = 0  # CPU threads of each process (0: torch's default); 1 on a shared CPU
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    sync_bn: bool = False  # SyncBatchNorm under torchrun (CUDA only)
    channels_last: bool = True
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    check_replicas: bool = True  # under torchrun: verify replicas are identical each epoch
    find_unused_parameters: bool = False  # DDP option for models with unused branches


@dataclass
class ModelConfig:
    """The body (MobileNetV1, or MobileNetV2 as the second) and how it is initialised (section
    ``model``)."""

    backbone: str = choice("mobilenet_v1", "mobilenet_v1", "mobilenet_v2")
    alpha: float = 1.0
    resolution: int = 224
    variant: str = choice("separable", "separable", "full", "shallow")
    activation: str = choice("relu6", "relu6", "relu")
    padding: str = choice("symmetric", "symmetric", "same")
    bn_eps: float = 1e-3
    bn_momentum: float = 0.1  # PyTorch convention: 1 - TF decay (TF-slim 0.9997 -> 0.0003)
    dropout: float = 0.001  # before the classifier (TF-slim keeps 0.999)
    init: str | None = None  # weights to start from: an mbv1 checkpoint or run folder, or peers'
    init_format: str = choice("auto", "auto", "mbv1", "timm", "tf-slim", "keras", "torchvision")
    freeze: str | None = None  # freeze the body up to this layer, e.g. conv11 (frozen_stages)
    norm_eval: bool = False  # BatchNorm statistics frozen in the whole body (norm_eval)


@dataclass
class DataConfig:
    """Where the data is and how images become tensors (section ``data``)."""

    path: str | None = None
    val_path: str | None = None  # a separate validation folder
    val_split: float = 0.1  # held-out fraction when the data has no validation split
    split_seed: int = 0  # the held-out split does not move when train.seed changes
    on_bad_image: str = choice("skip", "skip", "fail")  # unreadable images: report and skip
    augment: str = choice("inception", "inception", "light", "none")
    crop_scale: tuple[float, float] = (0.08, 1.0)  # inception: area range of the random crop
    hflip: bool = True
    color_jitter: float = 0.0  # brightness/contrast/saturation strength; 0 = off
    eval_crop: float = 0.875  # central fraction at evaluation (TF-slim)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # TF-slim: x/127.5 - 1
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass
class RunConfig:
    """Where results go (section ``run``)."""

    project: str = "runs"  # runs/<task>/<name>/
    name: str = "exp"
    recipe: str = ""  # one line naming the recipe (paper row, source), shown by `mbv1 report`
    tensorboard: bool = True  # when tensorboard is importable
    log_every: int = 0  # without a TTY: a progress line every N steps (0: one line per epoch)


SECTIONS: dict[str, type] = {"train": TrainConfig, "model": ModelConfig, "data": DataConfig,
                             "run": RunConfig}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
# Keys a resumed run may change: anything else would break the exact continuation.
RESUME_MUTABLE = {"train.epochs", "train.workers", "train.threads", "train.device",
                  "train.eval_every", "data.path", "data.val_path", "run.log_every",
                  "run.tensorboard"}


class Config:
    """A task's resolved configuration: ``cfg.train.lr``, ``cfg.data.path`` ...

    Attributes:
        task: the task name (``classification``).
        sections: section name -> dataclass instance.
        explicit: dotted keys set by a recipe file or the command line (not defaults), so that
            e.g. the preprocessing of init weights applies only where the user did not choose.
        source: where the values came from (recipe file and overrides), for the checkpoint meta.
    """

    def __init__(self, task: str, sections: dict[str, Any]):
        self.__dict__.update(task=task, sections=sections, explicit=set(), source=[])

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__["sections"]
        if name in sections:
            return sections[name]
        raise AttributeError(f"config has no section {name!r} (sections: {sorted(sections)})")

    def to_dict(self) -> dict:
        """Plain nested dict (tuples as lists): YAML- and checkpoint-safe."""
        out: dict = {"task": self.task}
        for name, sec in self.sections.items():
            out[name] = {f.name: _plain(getattr(sec, f.name)) for f in dataclasses.fields(sec)}
        return out

    def get(self, key: str) -> Any:
        section, name = _split_key(self, key)
        return getattr(self.sections[section], name)

    def set(self, key: str, value: Any, explicit: bool = True) -> None:
        """Set ``section.key`` to ``value`` after checking it against the field's type."""
        section, name = _split_key(self, key)
        sec = self.sections[section]
        f = {f.name: f for f in dataclasses.fields(sec)}[name]
        value = coerce(value, get_type_hints(type(sec))[name], key)
        allowed = f.metadata.get("choices")
        if allowed and value not in allowed:
            hint = difflib.get_close_matches(str(value), allowed, n=1)
            raise MBV1Error(f"{key} must be one of {', '.join(allowed)}; got {value!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        if key == "train.device" and not _DEVICE.match(value):
            raise MBV1Error(f"train.device must be auto, cpu, cuda or cuda:N; got {value!r}")
        bounds.check(key, value)
        setattr(sec, name, value)
        if explicit:
            self.explicit.add(key)

    def adopt(self, pairs, origin: str, log) -> None:
        """Take ``(key, value)`` pairs (``None`` values skipped) where the recipe or command
        line did not choose; say each change, and each explicit choice kept, through ``log``."""
        for key, value in pairs:
            current = self.get(key)
            if value is None or (tuple(current) == tuple(value) if isinstance(value, (list, tuple))
                                 else current == value):
                continue
            if key in self.explicit:
                log(f"note: {key}={current} kept, though {origin} use {value}")
            else:
                self.set(key, value, explicit=False)
                log(f"init: {key}={value} (from {origin})")

    def update(self, mapping: dict, origin: str, explicit: bool = True) -> None:
        """Apply a nested ``{section: {key: value}}`` mapping (a recipe file's content)."""
        if not isinstance(mapping, dict):
            raise MBV1Error(f"{origin}: expected a mapping of sections, got "
                            f"{type(mapping).__name__}")
        for section, values in mapping.items():
            if section == "task":  # one task, or a list of the tasks the recipe serves
                if values != self.task and not (isinstance(values, list) and self.task in values):
                    raise MBV1Error(f"{origin} is a recipe for task {values!r}, not {self.task!r}")
                continue
            if section not in self.sections:
                _unknown(str(section), list(self.sections), "section", origin)
            if not isinstance(values, dict):
                raise MBV1Error(f"{origin}: section {section!r} must be a mapping of keys, "
                                f"got {values!r}")
            for key, value in values.items():
                self.set(f"{section}.{key}", value, explicit)

    def apply_overrides(self, overrides: list[str] | tuple[str, ...]) -> None:
        """Apply ``section.key=value`` strings; values are YAML (``[0.5, 1]``, ``null``)."""
        for item in overrides:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise MBV1Error(f"--set expects section.key=value, got {item!r} "
                                "(e.g. --set train.lr=0.01)")
            try:
                value = yaml.safe_load(text) if text.strip() else None
            except yaml.YAMLError as e:
                raise MBV1Error(f"--set {item!r}: the value is not valid YAML ({e.problem})"
                                ) from None
            self.set(key.strip(), value)
        if overrides:
            self.source.append("--set " + " ".join(overrides))

    def save(self, path: str | Path) -> Path:
        from mbv1.checkpoint import atomic_write

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        return atomic_write(path, text)


def section_types(task_cls: Any = None) -> dict[str, type]:
    """The sections of a task's config: the common four, replaced or extended by the task's."""
    return {**SECTIONS, **(getattr(task_cls, "sections", None) or {})}


def default_config(task_cls: Any) -> Config:
    """The task's config before any recipe: dataclass defaults plus ``task_cls.defaults``."""
    cfg = Config(task_cls.name, {k: t() for k, t in section_types(task_cls).items()})
    cfg.update(getattr(task_cls, "defaults", None) or {}, f"defaults of task {task_cls.name}",
               explicit=False)
    return cfg


def load_config(task_cls: Any, file: str | Path | None = None, overrides: list[str] = (),
                options: dict[str, Any] | None = None) -> Config:
    """Resolve a task's config: defaults < recipe ``file`` < ``options`` (CLI shortcuts such as
    ``{"train.epochs": 5}``; ``None`` values are skipped) < ``overrides`` (``--set``)."""
    cfg = default_config(task_cls)
    if file is not None:
        cfg.update(read_yaml(file), str(file))
        cfg.source.append(str(file))
    for key, value in (options or {}).items():
        if value is not None:
            cfg.set(key, value)
    cfg.apply_overrides(list(overrides))
    return cfg


def config_from_dict(task_cls: Any, data: dict, origin: str = "checkpoint") -> Config:
    """Rebuild the config stored in a checkpoint. Keys this version no longer has are ignored
    (a checkpoint outlives the code); every known key counts as explicit."""
    cfg = default_config(task_cls)
    known = section_types(task_cls)
    for section, values in (data or {}).items():
        if section == "task" or section not in known or not isinstance(values, dict):
            continue
        names = {f.name for f in dataclasses.fields(known[section])}
        cfg.update({section: {k: v for k, v in values.items() if k in names}}, origin)
    return cfg


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MBV1Error(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MBV1Error(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return data or {}


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only lossless cases (int -> float,
    list -> tuple, ``"1e-4"`` -> float). Raises MBV1Error naming the key and the expected type."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except MBV1Error as e:
                errors.append(e)
        raise errors[0]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        return _bad(key, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return _bad(key, "an integer", value)
    if tp is float:
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if not math.isfinite(number):
                return _bad(key, "a finite number", value)
            return float(number)
        return _bad(key, "a number", value)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        return _bad(key, "a string", value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return _bad(key, f"a list ({_type_name(tp)})", value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return _bad(key, f"a list of {len(args)} values", value)
            return tuple(coerce(v, a, key) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    raise MBV1Error(f"{key}: unsupported field type {tp!r}")  # a programming error


def _bad(key: str, expected: str, value: Any) -> Any:
    raise MBV1Error(f"{key} must be {expected}; got {value!r} ({type(value).__name__})")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _split_key(cfg: Config, key: str) -> tuple[str, str]:
    section, dot, name = key.partition(".")
    if section not in cfg.sections:
        _unknown(section, list(cfg.sections), "section", key)
    if not dot or not name:
        names = [f.name for f in dataclasses.fields(cfg.sections[section])]
        raise MBV1Error(f"config key {key!r} needs a field: {section}.KEY with KEY one of "
                        f"{', '.join(names)}")
    names = [f.name for f in dataclasses.fields(cfg.sections[section])]
    if name not in names:
        full = [f"{s}.{f.name}" for s, sec in cfg.sections.items() for f in dataclasses.fields(sec)]
        hint = (difflib.get_close_matches(key, full, n=1, cutoff=0.6)
                or [f"{section}.{n}" for n in difflib.get_close_matches(name, names, n=1)])
        raise MBV1Error(f"unknown config key {key!r}"
                        + (f"; did you mean {hint[0]!r}?" if hint else "")
                        + f" (keys of {section}: {', '.join(names)})")
    return section, name


def _unknown(name: str, valid: list[str], what: str, origin: str) -> typing.NoReturn:
    hint = difflib.get_close_matches(name, valid, n=1)
    raise MBV1Error(f"unknown config {what} {name!r} in {origin}"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" (valid: {', '.join(valid)})")
