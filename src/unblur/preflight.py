"""Checks made before long work starts: can the outputs be written, is there room for them.

A run that dies after hours because its output folder is read-only, or because the disk filled up,
loses those hours. The checks here take milliseconds, so ``sharpen``, ``eval``, ``train`` and ``synth``
make them first and fail in one line that says what to change. They cannot promise success (another
program may fill the disk meanwhile); writers still go through :func:`unblur.io.atomic_write`, so a
failure later leaves no half-written file either.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = ["OutputError", "check_free_space", "ensure_writable_folder", "format_bytes", "refuse_inside"]

_PROBE_BYTES = 4096


class OutputError(OSError):
    """The output cannot be written where asked (unwritable, no space, or it would land on an input).

    An :class:`OSError` so that code already handling file-system failures handles these too; the
    message is one line naming the path and what to do.
    """


def format_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``: sizes in messages people read."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def ensure_writable_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` (and its parents) if needed and prove it is writable; return it.

    Writability is proved by writing, syncing and deleting a small hidden probe file rather than by
    ``os.access``, which answers for permission bits only: it says yes as root, on read-only mounts
    and on full disks. The probe's name starts with a dot, so an image lister never picks it up even
    if the process is killed before it is removed.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{folder}: cannot use it as the {what}: a file of that name exists") from None
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the {what} ({exc.strerror or exc})") from None
    probe = folder / f".unblur-write-probe-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * _PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"{folder}: the {what} is not writable ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return folder


def check_free_space(folder: str | Path, needed: int, what: str) -> None:
    """Refuse to start when ``folder``'s file system has less than ``needed`` bytes free.

    ``needed`` is the caller's estimate of what the run will write (``what`` describes it for the
    message). Estimates are made on the low side, so this refuses only runs that clearly cannot
    fit; a file system that does not report its free space is not checked.
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise OutputError(
            f"{folder}: not enough free space: {what} needs about {format_bytes(needed)} but only "
            f"{format_bytes(free)} is free; free some space or choose another --out"
        )


def refuse_inside(out: str | Path, folders: Iterable[str | Path], what: str, hint: str) -> None:
    """Refuse an output folder that is one of ``folders`` or lies inside one of them.

    Used to keep outputs out of the folders that hold a dataset's images, where they would be taken
    for data on the next run, or replace it. ``what`` names ``out`` in the message, ``hint`` says
    what to do instead.
    """
    target = Path(out).resolve()
    for folder in folders:
        resolved = Path(folder).resolve()
        if target == resolved or resolved in target.parents:
            raise OutputError(f"{out}: the {what} would be inside {folder}, which holds input images; {hint}")
