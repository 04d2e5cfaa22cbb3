"""User-facing errors of mbv1.

Every error raised on purpose by mbv1 derives from :class:`MBV1Error`; its message is a single
line that says what went wrong and what to do. The CLI prints it without a traceback.
"""

from __future__ import annotations


class MBV1Error(Exception):
    """A user-facing mbv1 error with a one-line message."""


class AssetMissing(MBV1Error):
    """A pinned asset (weights, sample data) is not in the local cache yet."""


class WriteError(MBV1Error):
    """A file or folder could not be written (disk full, not a folder, no permission...)."""


def write_error(path, exc: BaseException, what: str = "write") -> WriteError:
    """A one-line :class:`WriteError` for an ``OSError`` (or torch's writer error) raised
    while writing ``path``: which file or folder, and why in words."""
    return WriteError(f"cannot {what} {path}: {os_reason(path, exc)}")


def os_reason(path, exc: BaseException) -> str:
    """Why writing ``path`` failed, in words: the disk is full (with the space left), a part
    of the path is a file, permission denied, read-only file system, else the system's text."""
    import errno
    import shutil
    from pathlib import Path

    code = getattr(exc, "errno", None)
    folder = _existing_parent(Path(path))
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or is_torch_write_failure(exc):
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:,.0f} MB free"
        except OSError:
            free = "free space unknown"
        full = "the disk is full" if code != errno.EFBIG else "the file is too large"
        if code is None:  # torch's writer does not say why: short of space is the usual cause
            full = "the write failed; is the disk full?"
        return f"{full} ({free} on {folder}): free some space or write elsewhere"
    if code == errno.ENOTDIR or (isinstance(exc, FileExistsError) and not Path(path).is_dir()):
        blocker = next((p for p in [Path(path), *Path(path).parents]
                        if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a folder: choose another folder or move the file"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied in {folder}: choose a folder you can write to"
    if code == errno.EROFS:
        return f"{folder} is on a read-only file system: choose a writable folder"
    if getattr(exc, "strerror", None):
        return str(exc.strerror)
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def is_torch_write_failure(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("unexpected pos" in text
                                              or "file write failed" in text
                                              or "PytorchStreamWriter failed" in text)


def _existing_parent(path):
    for p in [path, *path.parents]:
        if p.is_dir():
            return p
    return path
