"""The running totals of one training epoch: loss parts summed on the device (read only at
logging intervals and at the end of the epoch: no host sync per step), images trained on,
images skipped, batches dropped, and the steps whose loss was not finite."""

from __future__ import annotations

import torch

COUNTS = ("images", "skipped", "dropped", "dropped_images", "trained")


class EpochMeters:
    """Args:
        device: where the sums live.
        saved: :meth:`state` of a partial epoch (a mid-epoch resume), or None.
    """

    def __init__(self, device: torch.device, saved: dict | None = None):
        saved = saved or {}
        self.device = device
        self.sums: dict[str, torch.Tensor] = {k: torch.tensor(v, device=device)
                                              for k, v in (saved.get("sums") or {}).items()}
        self.time_s = float(saved.get("time_s", 0.0))
        for k in COUNTS:
            setattr(self, k, int(saved.get(k, 0)))
        # steps with a non-finite loss, counted on the device
        self.bad = torch.zeros((), dtype=torch.int64, device=device) + int(saved.get("bad", 0))

    def batch(self, expected: int, n: int, min_batch: int) -> int:
        """Count a batch of ``n`` images where ``expected`` were sampled (the rest were
        unreadable and left out by collate); returns how many to train on: 0 when fewer than
        ``min_batch`` are left (dropped: BatchNorm cannot train on them)."""
        self.skipped += expected - n
        if 0 < n < min_batch:
            self.dropped += 1
            self.dropped_images += n
            return 0
        return n

    def add(self, out: dict[str, torch.Tensor], n: int, masked: bool) -> None:
        """Add one step's loss parts (weighted by its ``n`` images). ``masked``: a step with a
        non-finite loss adds nothing (float16's GradScaler skips that step's update)."""
        finite = torch.isfinite(out["loss"].detach())
        self.bad = self.bad + (~finite).to(torch.int64)
        for k, v in out.items():
            v = v.detach().float()
            if masked:
                v = torch.where(finite, v, torch.zeros_like(v))
            self.sums[k] = self.sums[k] + v * n if k in self.sums else v * n
        self.images += n
        self.trained += 1

    def read(self) -> tuple[float, int]:
        """``(mean loss so far, steps with a non-finite loss)`` in one device read."""
        loss, bad = torch.stack([self.sums["loss"].float() / max(1, self.images),
                                 self.bad.float()]).tolist()
        return loss, int(bad)

    def state(self) -> dict:
        """Plain values (checkpoint-safe); ``EpochMeters(device, state)`` continues from them."""
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "time_s": self.time_s,
                "bad": int(self.bad), **{k: getattr(self, k) for k in COUNTS}}


def epoch_totals(tr, epoch: int, m: dict, keys: list[str]) -> tuple[float, list[float]]:
    """``(images trained on, the sums of loss parts `keys`)`` of the epoch's meters state
    ``m`` over every process of trainer ``tr``; one line on skipped images and dropped
    batches; a one-line error when the epoch trained on no image at all."""
    from mbv1.engine import distributed as D
    from mbv1.engine.guards import skipped_line
    from mbv1.errors import MBV1Error

    counts = [float(m.get(k, 0)) for k in ("images", "skipped", "dropped", "dropped_images")]
    totals = D.sum_over_ranks(tr.env, counts + [m["sums"][k] for k in keys])
    seen, skipped, dropped, lost = (int(v) for v in totals[:4])
    n = len(tr.data.train)
    if not seen:
        raise MBV1Error(f"epoch {epoch + 1} trained on no image: none of the {n:,} training "
                        f"images could be read (each is named above); fix or remove them, or "
                        f"check data.path={tr.cfg.data.path}")
    if skipped or dropped:
        tr.progress.log(skipped_line(epoch + 1, n, skipped, dropped, lost, tr.min_batch))
    return float(seen), totals[4:]
