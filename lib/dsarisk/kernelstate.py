"""The state of a reused kernel: recorded once after its warm-up imports, restored after
each notebook, so that the next one sees what it would see in a fresh kernel.

Runs inside the kernel (``dsarisk.engine`` calls it there). What a notebook can change
and a later one could see: its variables and output history, the execution count, open
figures, matplotlib's rcParams (seaborn themes are rcParams), pandas options, warning
filters, environment variables, the working directory and ``sys.path``. Modules stay
imported (that is the point of reuse); dsarisk's own caches are keyed by the files'
contents, so a reused kernel reads the same inputs a fresh one would.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

_baseline: dict[str, Any] = {}
_figure_seconds = 0.0


def _timed_figures() -> None:
    """Count the time matplotlib spends encoding figures (the inline backend's PNGs)."""
    from matplotlib.backend_bases import FigureCanvasBase

    encode = FigureCanvasBase.print_figure
    if getattr(encode, "_dsarisk_timed", False):
        return

    def print_figure(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _figure_seconds
        started = time.perf_counter()
        try:
            return encode(self, *args, **kwargs)
        finally:
            _figure_seconds += time.perf_counter() - started

    print_figure._dsarisk_timed = True  # type: ignore[attr-defined]
    FigureCanvasBase.print_figure = print_figure  # type: ignore[method-assign]


def record_namespace() -> None:
    """Remember the user namespace of the newly started kernel, before the warm-up binds names."""
    from IPython import get_ipython

    _baseline["namespace"] = dict(get_ipython().user_ns)


def record() -> None:
    """Remember the kernel's state after its warm-up, as every notebook must find it."""
    import matplotlib

    _timed_figures()
    _baseline.update(
        rc=dict(matplotlib.rcParams.copy()), environ=dict(os.environ), cwd=os.getcwd(), path=list(sys.path),
        warnings=list(warnings.filters),
    )


def restore() -> float:
    """Put the kernel back in its recorded state (call between notebooks); return the seconds
    spent encoding figures since the last restore."""
    global _figure_seconds
    import matplotlib
    import matplotlib.pyplot as plt
    from IPython import get_ipython

    shell = get_ipython()
    plt.close("all")
    shell.reset(new_session=True)  # In/Out and _ history, the display hook; execution count 1 in a new
    shell.user_ns.clear()          # history session. The namespace as the new kernel had it: nothing
    shell.user_ns.update(_baseline["namespace"])  # the warm-up or a notebook bound
    dict.update(matplotlib.rcParams, _baseline["rc"])  # as matplotlib.rc_context restores them
    if dict(os.environ) != _baseline["environ"]:
        os.environ.clear()
        os.environ.update(_baseline["environ"])
    os.chdir(_baseline["cwd"])
    sys.path[:] = _baseline["path"]
    warnings.filters[:] = _baseline["warnings"]
    warnings._filters_mutated()  # type: ignore[attr-defined]  # drop the per-module "already warned" caches
    if "pandas" in sys.modules:  # the warm-up sets no pandas option: every one back to its default
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resetting deprecated options warns
            sys.modules["pandas"].reset_option("all")
    spent, _figure_seconds = _figure_seconds, 0.0
    return spent
