"""Training progress: a rich bar on a terminal, plain lines otherwise; rank 0 only.

The bar advances every step without touching the GPU; the loss it shows is refreshed at
logging intervals only (reading a loss value waits for the device).
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Args:
        enabled: False on ranks other than 0.
        log_every: without a TTY, print a line every N steps (0: one line per epoch).
        tty: force (True/False) or detect (None) an interactive terminal.
    """

    def __init__(self, enabled: bool = True, log_every: int = 0, tty: bool | None = None):
        self.enabled = enabled
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.log_every = log_every
        self._bar = None
        self._task = None
        self._console = None

    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, width=None if self.tty else 160)
        return self._console

    def log(self, line: str) -> None:
        """A line of plain text (no markup: paths may hold brackets) above the bar."""
        if not self.enabled:
            return
        if self.tty:
            self.console().print(line, markup=False)
        else:
            print(line, flush=True)

    def start_epoch(self, epoch: int, epochs: int, steps: int, start: int = 0) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.t0, self.images = time.perf_counter(), 0
        if not (self.enabled and self.tty):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeRemainingColumn(), console=self.console(), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("train", total=steps, completed=start, info="")

    def step(self, step: int, images: int) -> None:
        """Step ``step`` (1-based within the epoch) done with ``images`` images."""
        self.images += images
        if self._bar is not None:
            self._bar.update(self._task, completed=step)

    def show(self, step: int, loss: float, lr: float) -> None:
        """Logging interval: the current loss and learning rate."""
        ips = self.images / max(1e-9, time.perf_counter() - self.t0)
        info = f"loss {loss:.4f}  lr {lr:.3g}  {ips:,.0f} img/s"
        if self._bar is not None:
            self._bar.update(self._task, info=info)
        elif self.enabled and self.log_every:
            print(f"epoch {self.epoch + 1}/{self.epochs} step {step}/{self.steps} {info}",
                  flush=True)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
