"""Processes and devices: one process, or DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m mbv1 train ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; :func:`setup` then joins the process group (NCCL on CUDA, gloo on CPU) and
pins each process to ``cuda:LOCAL_RANK``. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from mbv1.devices import resolve_device


@dataclass
class DistEnv:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False  # this module initialised the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> DistEnv:
    """Join the torchrun process group when there is one; choose this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local if world > 1 else 0)
    owns = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend, timeout=timedelta(minutes=60), **kw)
        owns = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistEnv(rank, local, world, dev, owns)


def cleanup(env: DistEnv, finished: bool = True) -> None:
    """Leave the process group. After a normal finish all ranks meet first: a rank that
    exits while another still talks to it (the store lives in rank 0) can make the other's
    gloo threads abort the process. After an error there is no meeting (it could hang)."""
    if env.owns_group and dist.is_initialized():
        if finished and env.distributed:
            dist.barrier()
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def broadcast_object(env: DistEnv, obj):
    """Rank 0's ``obj`` on every rank."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(env: DistEnv, obj) -> list:
    if not env.distributed:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def sum_over_ranks(env: DistEnv, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (epoch totals of losses and images)."""
    if not env.distributed or not values:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(env: DistEnv, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (e.g. a stop signal seen by one)."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


@torch.no_grad()
def broadcast_buffers(env: DistEnv, model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm statistics) everywhere. DDP does this at the start of every
    forward; after an epoch's last step each process holds its own update until then."""
    if env.distributed:
        for b in model.buffers():
            dist.broadcast(b, src=0)


@torch.no_grad()
def replica_max_diff(env: DistEnv, model: torch.nn.Module) -> float:
    """Largest difference of any weight or buffer between replicas (0.0: identical)."""
    flat = torch.cat([t.detach().double().reshape(-1) for t in model.state_dict().values()])
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float((high - low).max().item()) if flat.numel() else 0.0
