"""The output folder: what dsarisk may write there and what it may replace.

A run writes into a staging folder and swaps it into place at the end. dsarisk
replaces or removes only folders that carry its own marker file, never one it did
not write (``--out-dir data`` must not delete ``data/2023``), refuses an output folder
that holds or lies inside the inputs, swaps under a lock on the output folder (two
runs of one year at once cannot trip over each other), and removes the staging
folders of runs that died (their owner's pid is part of the name).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from .exceptions import OutputError

MARKER = ".dsarisk-output"
MARKER_TEXT = "Written by dsarisk: the next run of the same year replaces this folder. Delete this file to keep it.\n"
OPTION = "--out-dir"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|retired)-(?P<pid>\d+)-")


def _refuse(message: str, folder: Path) -> OutputError:
    return OutputError(message, file=folder, field=OPTION)


def carries_marker(folder: Path) -> bool:
    """Whether ``folder`` is a real folder (not a link) that dsarisk wrote."""
    return folder.is_dir() and not folder.is_symlink() and (folder / MARKER).is_file()


def prepare(out_root: Path, *, inputs: Mapping[str, Path]) -> Path:
    """Check and create the output folder; return it resolved.

    Parameters
    ----------
    out_root : Path
        The folder that will hold ``<year>/``.
    inputs : mapping of str to Path
        What the run reads, by name (``data folder``, ``notebooks``...): the output folder
        may neither hold nor lie inside any of them.

    Raises
    ------
    OutputError
        When the folder overlaps an input, is a file, or cannot be created or written.
    """
    root = out_root.resolve()
    for what, path in inputs.items():
        resolved = path.resolve()
        if root.is_relative_to(resolved) or resolved.is_relative_to(root):
            raise _refuse(f"holds or lies inside the {what} ({path}): choose a folder of its own", out_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _refuse("is a file, not a folder", out_root) from None
    except OSError as exc:
        raise _refuse(f"cannot be created ({exc.strerror})", out_root) from None
    if not root.is_dir():
        raise _refuse("is a file, not a folder", out_root)
    if not os.access(root, os.W_OK | os.X_OK):
        raise _refuse("is not writable", out_root)
    return root


def check_replaceable(folder: Path) -> None:
    """Raise OutputError unless ``folder`` is absent or was written by dsarisk."""
    if (folder.exists() or folder.is_symlink()) and not carries_marker(folder):
        raise _refuse(f"{folder.name}/ there was not written by dsarisk (it has no {MARKER} file) and would be "
                      "replaced: move it away or choose another folder", folder.parent)


def make_staging(out_root: Path, name: str) -> Path:
    """A new staging folder for ``<out_root>/<name>``, marked, its owner's pid in its name."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-{os.getpid()}-", dir=out_root))
        staging.chmod(0o755)  # mkdtemp's private mode would carry over to the published folder
        (staging / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        raise _refuse(f"cannot be written ({exc.strerror})", out_root) from None
    return staging


@contextlib.contextmanager
def _locked(out_root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder itself (released when the process dies)."""
    descriptor = os.open(out_root, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _retired_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.retired-{os.getpid()}-{time.time_ns()}")


def swap_into_place(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging``: two renames under the output folder's lock, so no
    reader sees a half folder and two runs swapping at once cannot trip over each other.

    Raises
    ------
    OutputError
        When ``final`` exists and was not written by dsarisk.
    """
    with _locked(final.parent):
        check_replaceable(final)
        retired = None
        if final.exists():
            retired = _retired_name(final)
            final.rename(retired)
        staging.rename(final)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def replace_with_copy(source: Path, final: Path) -> None:
    """Replace ``final`` by a marked copy of the folder ``source``."""
    staging = make_staging(final.parent, final.name)
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        swap_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:  # a zombie is dead for our purpose: it runs nothing
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def sweep_leftovers(out_root: Path) -> list[Path]:
    """Remove the staging folders of runs that died (killed, or the machine went down) and
    return them. A report retired by a run that died before putting the new one in place is
    put back instead. Only marked folders whose owner process is gone are touched."""
    removed = []
    with _locked(out_root):
        for entry in sorted(out_root.iterdir()):
            match = _LEFTOVER.match(entry.name)
            if not match or not carries_marker(entry) or _alive(int(match["pid"])):
                continue
            final = out_root / match["name"]
            if match["kind"] == "retired" and not (final.exists() or final.is_symlink()):
                entry.rename(final)
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed

