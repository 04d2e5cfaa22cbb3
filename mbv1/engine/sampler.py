"""The training sampler: a seeded permutation per epoch, sharded across processes, resumable.

Global batch ``k`` of an epoch is ``perm[k·B : (k+1)·B]`` (B = ``train.batch_size``) whatever
the number of processes: rank ``r`` of ``W`` takes every W-th element of it (the interleaving
of ``DistributedSampler``), so one process and W processes see the same global batches. The
incomplete last batch is dropped. ``set_epoch(epoch, start_batch)`` restarts mid-epoch after a
resume.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from mbv1.errors import MBV1Error


class ResumableSampler(Sampler[int]):
    """Args:
        size: dataset length.
        batch_size: global batch size B (divisible by ``world_size``).
        seed: ``train.seed``; the permutation of epoch e is drawn from ``seed + e``.
        world_size, rank: the process group.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, world_size: int = 1,
                 rank: int = 0):
        if batch_size % world_size:
            raise MBV1Error(f"train.batch_size {batch_size} must be divisible by the number of "
                            f"processes ({world_size}): it is the global batch")
        self.steps = size // batch_size
        if self.steps == 0:
            raise MBV1Error(f"train.batch_size {batch_size} is larger than the {size} training "
                            "images: lower it")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.world_size, self.rank = world_size, rank
        self.epoch, self.start_batch = 0, 0

    @property
    def local_batch_size(self) -> int:
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if not 0 <= start_batch <= self.steps:
            raise ValueError(f"start_batch {start_batch} outside 0..{self.steps}")
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.size, generator=g)[: self.steps * self.batch_size]
        mine = perm[self.start_batch * self.batch_size + self.rank:: self.world_size]
        return iter(mine.tolist())

    def __len__(self) -> int:
        return (self.steps - self.start_batch) * self.local_batch_size
