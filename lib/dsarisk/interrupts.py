"""Ctrl-C, the one home of its handling.

Python raises KeyboardInterrupt wherever the main thread happens to be, and drops it when that
is a callback (an import lock's weakref callback, say: "Exception ignored in:
_get_module_lock.<locals>.cb"), so the run would go on. While a command runs, Ctrl-C is also
remembered in :data:`INTERRUPTED`, which the engine's wait for notebooks honours, and the
dropped exception's traceback is not printed (the run ends with one line instead).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

INTERRUPTED = threading.Event()


def _interrupt(signum: int, frame: object) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt


def _unraisable(hook):  # type: ignore[no-untyped-def]
    """``hook``, silent for a KeyboardInterrupt that Python dropped (it is remembered)."""
    def silent_on_ctrl_c(unraisable) -> None:  # type: ignore[no-untyped-def]
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)
    return silent_on_ctrl_c


@contextmanager
def ctrl_c_remembered() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt and sets :data:`INTERRUPTED` until the block ends (in
    the main thread; elsewhere signals cannot be handled and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    INTERRUPTED.clear()
    previous, hook = signal.signal(signal.SIGINT, _interrupt), sys.unraisablehook
    sys.unraisablehook = _unraisable(hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook
        INTERRUPTED.clear()  # the block's Ctrl-C is not the next caller's (a later run in this process)
