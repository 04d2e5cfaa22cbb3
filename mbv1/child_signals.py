"""The SIGCHLD handler that PyTorch's DataLoader leaves behind.

The first DataLoader with worker processes installs a SIGCHLD handler (to notice a worker that
dies) and never removes it. Left in place after training it fires for every later child
process of mbv1 (an export's converter, a package client) and, in long-lived processes that
run many commands, was seen to crash the process (a SIGSEGV with si_code SI_KERNEL as a child
exited). :func:`restoring_sigchld` puts back the handler found before, and lets the next
DataLoader install its own again.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator


def sigchld_handler():
    """The current SIGCHLD disposition (``None`` off the main thread or without SIGCHLD)."""
    if not hasattr(signal, "SIGCHLD"):
        return None
    return signal.getsignal(signal.SIGCHLD)


def restore_sigchld(previous=signal.SIG_DFL) -> None:
    """Put ``previous`` back as the SIGCHLD handler (main thread only) and clear PyTorch's
    "installed" flag so that a later DataLoader installs its handler again."""
    if not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
        return
    if previous is None:
        previous = signal.SIG_DFL
    if signal.getsignal(signal.SIGCHLD) is not previous:
        signal.signal(signal.SIGCHLD, previous)
    handling = sys.modules.get("torch.utils.data._utils.signal_handling")
    if handling is not None:  # not imported: no DataLoader ran, nothing to clear
        handling._SIGCHLD_handler_set = False


@contextlib.contextmanager
def restoring_sigchld() -> Iterator[None]:
    """Within: DataLoaders may install their handler; after: the handler found before."""
    previous = sigchld_handler()
    try:
        yield
    finally:
        restore_sigchld(previous)
