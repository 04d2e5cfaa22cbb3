"""The training loop every task shares: :func:`train`.

One epoch: the sampler's permutation for ``(seed, epoch)`` → ``task.forward_loss`` under
autocast → backward (GradScaler for float16 AMP) → optional gradient clipping → optimiser and
schedule step → EMA update. Loss parts accumulate as device tensors; values are read only at
logging intervals and at the end of the epoch. Then rank 0 evaluates (the EMA weights when
``train.ema``), appends a row to metrics.csv and saves last.pt (and best.pt when the primary
metric improves).

SIGTERM / SIGINT: the current step finishes, last.pt is saved with the position inside the
epoch, and :func:`train` returns with ``interrupted`` set (a second Ctrl-C aborts at once).

Nothing wrong is trained on or saved (:mod:`mbv1.engine.guards`): batch sizes BatchNorm cannot
train on are refused, a batch that skipped images leave too small is dropped, an epoch without
a readable image stops the run, the loss of every step is summed on the device and checked at
least once per epoch, and weights and buffers are checked before every checkpoint: a
diverging run stops with one line and never writes a non-finite last.pt or best.pt. A new run
that fails before its first checkpoint leaves no run folder.
``--resume RUN_DIR`` restores model, optimiser, schedule, scaler, EMA, epoch, step, RNG states
and the sampler position: the resumed run computes exactly what the uninterrupted run would.
"""

from __future__ import annotations

import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from mbv1 import seeding
from mbv1.backbone.pretrained import InitWeights, read_init
from mbv1.checkpoint import save_checkpoint
from mbv1.child_signals import restoring_sigchld
from mbv1.engine import distributed as D
from mbv1.engine import finetune, guards, runs
from mbv1.engine.config import Config
from mbv1.engine.ema import ModelEMA
from mbv1.engine.meta import build_meta, header_line, recipe_line
from mbv1.engine.meters import EpochMeters, epoch_totals
from mbv1.engine.optim import build_optimizer, build_scheduler
from mbv1.engine.progress import Progress
from mbv1.engine.resume import StopFlag, restore, resume_checkpoint
from mbv1.engine.sampler import ResumableSampler
from mbv1.engine.task import FrozenTeacher, Metrics, Task
from mbv1.errors import MBV1Error, WriteError


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank)."""

    run_dir: Path
    epochs_done: int
    best: float | None
    best_epoch: int | None
    metrics: dict  # the last evaluation, checkpoint form (values, primary, split)
    interrupted: int | None  # the signal that stopped the run, if any
    model: nn.Module  # the evaluated weights (EMA when on), unwrapped
    wall_s: float


def train(task_cls: type[Task], cfg: Config, *, resume: str | Path | None = None,
          exist_ok: bool = False, command: str | None = None,
          tty: bool | None = None) -> TrainResult:
    """Train ``task_cls`` with ``cfg``; ``resume`` continues the run folder's last.pt (build
    its ``cfg`` with :func:`resume_config`). Runs under torchrun when launched by it."""
    env = D.setup(cfg.train.device)
    saved = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    finished = False
    try:
        # DataLoader workers' SIGCHLD handler does not outlive training; a step without an
        # update (a batch of unreadable images) is not news to the schedule
        with restoring_sigchld(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before")
            result = Trainer(task_cls, cfg, env, resume, exist_ok, command, tty).run()
        finished = True
        return result
    except MBV1Error as e:  # from a data-loader worker the message carries a traceback
        raise MBV1Error(_last_line(str(e))) from None
    finally:
        D.cleanup(env, finished)
        torch.use_deterministic_algorithms(saved[0])  # process-wide settings back as found
        torch.set_num_threads(saved[1])


def _last_line(message: str) -> str:
    line = message.strip().splitlines()[-1] if message.strip() else message
    return line.split("MBV1Error: ", 1)[-1]


class Trainer:
    def __init__(self, task_cls, cfg: Config, env: D.DistEnv, resume, exist_ok, command, tty):
        self.task_cls, self.cfg, self.env = task_cls, cfg, env
        self.ckpt = resume_checkpoint(task_cls, resume) if resume else None
        self.resume_dir = Path(resume) if resume else None
        self.exist_ok, self.command = exist_ok, command
        self.progress = Progress(env.is_main, cfg.run.log_every, tty)
        self.epoch = self.start_step = self.global_step = 0
        self.best = self.best_epoch = None
        self.metrics: dict = {}
        self.meters: dict | None = None
        self.t_start = time.perf_counter()
        self.run_dir: Path | None = None
        self.tb: runs.TensorBoard | None = None
        self.fresh = False  # a new run folder made by this run (removed if it fails unsaved)

    # -- set-up --------------------------------------------------------------------------
    def run(self) -> TrainResult:
        try:
            self._run_dir()
            self._build()
            if self.env.is_main and self.ckpt is None:
                self.cfg.save(self.run_dir / runs.CONFIG)  # as resolved (init weights' numerics)
            if self.ckpt is not None:
                restore(self)
            return self._loop()
        except BaseException:
            if self.tb is not None:
                self.tb.close()
                self.tb = None
            if self.fresh and self.env.is_main and self.run_dir is not None \
                    and guards.discard_run(self.run_dir):
                self.progress.log(f"removed {self.run_dir}: the run failed before its first "
                                  "checkpoint")
            raise
        finally:
            if self.tb is not None:
                self.tb.close()

    def _run_dir(self) -> None:
        cfg = self.cfg
        named = Path(cfg.run.project) / self.task_cls.name / cfg.run.name
        self.fresh = self.resume_dir is None and not (self.exist_ok and named.exists())
        if self.resume_dir is not None:
            d = self.resume_dir if self.resume_dir.is_dir() else self.resume_dir.parent
        elif self.env.is_main:
            try:
                d = runs.new_run_dir(cfg.run.project, self.task_cls.name, cfg.run.name,
                                     self.exist_ok)
            except WriteError as e:
                raise WriteError(f"{e} (run.project={cfg.run.project})") from None
        else:
            d = None
        self.run_dir = Path(D.broadcast_object(self.env, str(d) if d else None))
        if self.env.is_main:
            cfg.save(self.run_dir / runs.CONFIG)
        self.log = runs.MetricsLog(self.run_dir / runs.METRICS) if self.env.is_main else None
        self.tb = runs.TensorBoard(self.run_dir, cfg.run.tensorboard and self.env.is_main)

    def _build(self) -> None:
        cfg, env, t = self.cfg, self.env, self.cfg.train
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        seeding.set_deterministic(t.deterministic)
        seeding.seed_everything(t.seed, env.rank)
        init = None
        if self.ckpt is None:
            note = finetune.drop_default_init(cfg)
            if note:
                self.progress.log(note)
            self.progress.log(f"recipe: {recipe_line(cfg)}")
            if cfg.model.init:
                init = read_init(cfg.model.init, cfg.model.init_format)
                self._adopt(init)
        self.task = self.task_cls(cfg, env.device)
        self.task.run_dir = self.run_dir
        for setting in getattr(self.task, "adopted", ()) if self.ckpt is None else ():
            self.progress.log(f"init: {setting} (the init model's architecture)")
        self.task.resume_meta = self.ckpt["meta"] if self.ckpt is not None else None
        data = self.task.build_datasets()
        info = self.task.meta(data)
        model = self.task.build_model(info)
        if init and not self.task.takes_init:
            self.progress.log(f"init: model.init={cfg.model.init} not loaded: this model brings "
                              "its own pretrained body")
            init = None
        for line in [*finetune.load_init(model, init), *self.task.after_init(model, init)] \
                if init else []:
            self.progress.log(line)
        self.frozen = finetune.freeze(model, cfg.model.freeze)
        if t.sync_bn and env.distributed:
            if env.device.type != "cuda":
                raise MBV1Error("train.sync_bn needs CUDA (torch's SyncBatchNorm runs on GPUs "
                                "only); on CPU freeze BN statistics with model.norm_eval=true")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(env.device)
        if t.channels_last:
            model.to(memory_format=torch.channels_last)
        self.min_batch, self.bn_layer = guards.bn_min_batch(
            model, cfg.model.resolution, self.task.cost_forward(),
            lambda m: finetune.train_mode(m, self.frozen, cfg.model.norm_eval))
        self.model, self.data = model, data
        self.meta = build_meta(self.task, cfg, model, data, info, init, self.command, self.run_dir)
        teacher = self.task.build_teacher()
        self.teacher = FrozenTeacher(teacher).to(env.device) if teacher is not None else None
        self.optimizer = build_optimizer(model, t)
        self.sampler = ResumableSampler(len(data.train), t.batch_size, t.seed, env.world_size,
                                        env.rank)
        if self.sampler.local_batch_size < self.min_batch:
            raise MBV1Error(guards.small_batch_message(self))
        self.scheduler = build_scheduler(self.optimizer, t, self.sampler.steps)
        self.amp = t.amp and env.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if t.amp_dtype == "bfloat16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and t.amp_dtype == "float16")
        self.ema = ModelEMA(model, t.ema_decay) if t.ema else None
        self.ddp = model
        if env.distributed:
            ids = [env.device.index] if env.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=t.find_unused_parameters)
        self._loaders()

    def _adopt(self, init: InitWeights) -> None:
        """Init weights bring their numerics (padding, BN eps...) and preprocessing, except
        where the recipe or command line chose otherwise."""
        pairs = [("model.backbone", init.body)] + [(f"model.{k}", v)
                                                   for k, v in init.backbone.items()]
        pairs += [("data.mean", init.mean), ("data.std", init.std)]
        self.cfg.adopt(pairs, "the init weights", self.progress.log)

    def _loaders(self) -> None:
        t, env, task = self.cfg.train, self.env, self.task
        from mbv1.devices import loader_workers

        workers = loader_workers(t.workers)
        common = dict(num_workers=workers, collate_fn=task.collate,
                      pin_memory=env.device.type == "cuda",
                      worker_init_fn=seeding.worker_init_fn if workers else None)
        self.loader_gen = torch.Generator()
        self.train_loader = DataLoader(self.data.train, batch_size=self.sampler.local_batch_size,
                                       sampler=self.sampler, generator=self.loader_gen, **common)
        self.val_loader = None
        if self.data.val is not None and env.is_main:
            self.val_loader = DataLoader(self.data.val, batch_size=self.sampler.local_batch_size,
                                         shuffle=False, generator=torch.Generator(), **common)

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> TrainResult:
        t = self.cfg.train
        self.progress.log(header_line(self))
        with StopFlag() as stop:
            for epoch in range(self.epoch, t.epochs):
                if not self._train_epoch(epoch, stop):
                    self._save_last(epoch, self.step_in_epoch)
                    return self._result(epoch, stop.signum)
                self._end_epoch(epoch)
                if D.any_rank(self.env, stop.signum is not None) and epoch + 1 < t.epochs:
                    return self._result(epoch + 1, stop.signum or signal.SIGTERM)
        return self._result(t.epochs, None)

    def _train_epoch(self, epoch: int, stop: StopFlag) -> bool:
        t, task = self.cfg.train, self.task
        finetune.train_mode(self.ddp, self.frozen, self.cfg.model.norm_eval)
        start = self.start_step if epoch == self.epoch else 0
        self.sampler.set_epoch(epoch, start)
        if hasattr(self.data.train, "set_epoch"):
            self.data.train.set_epoch(epoch)
        self.loader_gen.manual_seed(seeding.sample_seed(t.seed, epoch, 0xFFFFFFFF))
        m = EpochMeters(self.env.device, self.meters if start else None)
        self.progress.start_epoch(epoch, t.epochs, self.sampler.steps, start)
        t0, step, every = time.perf_counter() - m.time_s, start, self.cfg.run.log_every or 10
        params = [p for p in self.model.parameters() if p.requires_grad]
        for batch in self.train_loader:
            step += 1
            self.global_step += 1
            n = 0 if batch is None else int(batch["image"].shape[0])  # a shape: no device sync
            if m.batch(self.sampler.local_batch_size, n, self.min_batch):
                batch = task.to_device(batch)
                with torch.autocast(self.env.device.type, self.amp_dtype, enabled=self.amp):
                    out = guards.forward_loss(self, batch)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(out["loss"]).backward()
                if t.grad_clip > 0:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(params, t.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.ema is not None:
                    self.ema.update(self.model)
                m.add(out, n, masked=self.scaler.is_enabled())
                self.progress.step(step, n)
            self.scheduler.step()
            if step % every == 0 and m.images:
                loss, bad = m.read()
                if bad and not self.scaler.is_enabled() and not self.env.distributed:
                    guards.diverged(self, f"the training loss was nan or inf by step {step}")
                self.progress.show(step, loss, self.optimizer.param_groups[0]["lr"])
            if step < self.sampler.steps and self._stop(stop, step):
                self.step_in_epoch = step  # at the last step the epoch ends normally instead
                return self._epoch_done(m, t0, complete=False)
        return self._epoch_done(m, t0, complete=True)

    def _epoch_done(self, m: EpochMeters, t0: float, complete: bool) -> bool:
        """The loop over batches ended (``complete``) or stopped inside: what must hold before
        anything of this epoch is saved (:func:`guards.check_finite`), then its meters."""
        m.time_s = time.perf_counter() - t0
        self.progress.end_epoch()
        guards.check_finite(self, m)
        self.meters = m.state()
        return complete

    def _stop(self, stop: StopFlag, step: int) -> bool:
        if not self.env.distributed:
            return stop.signum is not None
        if step % 10 == 0 or step == self.sampler.steps:  # a collective: not every step
            return D.any_rank(self.env, stop.signum is not None)
        return False

    # -- end of epoch --------------------------------------------------------------------
    def _end_epoch(self, epoch: int) -> None:
        t, env = self.cfg.train, self.env
        m = self.meters
        keys = sorted(m["sums"])  # every rank's loss parts, summed: the global epoch mean
        images, totals = epoch_totals(self, epoch, m, keys)
        row = {"epoch": epoch + 1, "step": self.global_step,
               "lr": self.optimizer.param_groups[0]["lr"],
               **{f"train_{k}": v / images for k, v in zip(keys, totals)},
               "images_per_s": images / max(1e-9, m["time_s"]), "train_time_s": m["time_s"]}
        evaluated = None
        due = (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs
        if self.val_loader is not None and due:
            evaluated = self._evaluate()
            row.update({f"val_{k}": v for k, v in evaluated.values.items()})
        if env.distributed:
            D.broadcast_buffers(env, self.model)
            if t.check_replicas:
                row["replica_max_diff"] = D.replica_max_diff(env, self.model)
        self.meters, self.start_step = None, 0
        improved = self._record(epoch, evaluated) if env.is_main else False
        self._save_last(epoch + 1, 0, improved)
        if env.is_main:  # after the checkpoints it describes
            self._publish(epoch, row, evaluated)
        D.barrier(env)

    def _evaluate(self) -> Metrics:
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        t0 = time.perf_counter()
        autocast = torch.autocast(self.env.device.type, self.amp_dtype, enabled=self.amp)
        loader = guards.CountingLoader(self.val_loader)
        with torch.no_grad(), autocast:
            metrics = self.task.evaluate(model, loader, self.teacher)
        loader.check(self.data.val_split, self.progress.log)
        metrics.values.setdefault("eval_time_s", time.perf_counter() - t0)
        return metrics

    def _record(self, epoch: int, evaluated: Metrics | None) -> bool:
        """The evaluation into the best metric and the checkpoint meta; True when the primary
        metric improved."""
        improved = evaluated is not None and evaluated.better_than(self.best)
        if evaluated is not None:
            if improved:
                self.best, self.best_epoch = evaluated.value, epoch + 1
            self.metrics = {**evaluated.to_dict(), "epoch": epoch + 1}
            self.meta["metrics"] = self.metrics
            self.meta["details"] = evaluated.details
        return improved

    def _publish(self, epoch: int, row: dict, evaluated: Metrics | None) -> None:
        """metrics.csv, TensorBoard and the epoch line (after the epoch's checkpoints)."""
        self.log.append(row)
        self.tb.scalars(row, epoch + 1)
        line = (f"epoch {epoch + 1}/{self.cfg.train.epochs}  loss {row.get('train_loss', 0):.4f}  "
                f"lr {row['lr']:.4g}  {row['images_per_s']:,.0f} img/s")
        if evaluated is not None:
            p = evaluated.primary
            line += (f"  {p} {evaluated.value:.4g} on {evaluated.split} (best {self.best:.4g} "
                     f"@ epoch {self.best_epoch})")
        if "replica_max_diff" in row:
            line += f"  replicas differ by {row['replica_max_diff']:.3g}"
        self.progress.log(line)

    def _weights(self) -> dict:
        return (self.ema.module if self.ema is not None else self.model).state_dict()

    def _save_last(self, epoch: int, step: int, improved: bool = False) -> None:
        """last.pt at (epoch, step) of the next position to run; all ranks must call."""
        rng = D.all_gather_object(self.env, seeding.rng_state())
        if not self.env.is_main:
            return
        self.meta["epochs_done"] = epoch  # whole epochs; a mid-epoch save adds `step`
        state = {"global_step": self.global_step, "best": self.best, "best_epoch": self.best_epoch,
                 "meters": self.meters if step else None, "world_size": self.env.world_size,
                 "ema": self.ema.state_dict() if self.ema is not None else None,
                 "raw_model": self.model.state_dict() if self.ema is not None else None}
        common = dict(task=self.task_cls.name, model=self._weights(), config=self.cfg.to_dict(),
                      meta=self.meta)
        had_last = (self.run_dir / runs.LAST).exists()
        try:
            save_checkpoint(self.run_dir / runs.LAST, **common,
                            optimizer=self.optimizer.state_dict(),
                            scheduler=self.scheduler.state_dict(),
                            scaler=self.scaler.state_dict(), epoch=epoch, step=step, rng=rng,
                            train_state=state)
            if improved:
                save_checkpoint(self.run_dir / runs.BEST, **common)
        except WriteError as e:
            then = (f"; {runs.LAST} keeps the previous epoch: continue with mbv1 train "
                    f"{self.task_cls.name} --resume {self.run_dir}" if had_last else "")
            raise WriteError(f"{e}{then}") from None

    def _result(self, epochs_done: int, signum: int | None) -> TrainResult:
        model = self.ema.module if self.ema is not None else self.model
        return TrainResult(self.run_dir, epochs_done, self.best, self.best_epoch, self.metrics,
                           signum, model.eval(), time.perf_counter() - self.t_start)
