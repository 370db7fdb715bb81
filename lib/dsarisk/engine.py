"""Execute notebooks with papermill in worker processes, each on a warm kernel.

Every worker starts its kernel ahead of need and runs the notebooks' common imports
there once; the kernel then executes notebook after notebook, its state restored in
between (``dsarisk.kernelstate``), and is replaced after a failed notebook. Workers
and kernels die with the process that started them.

Kept free of heavy imports at module level: every worker process imports this
module before it can start its kernel, so what it imports is paid once per worker.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

from .exceptions import PipelineError
from .interrupts import INTERRUPTED

KERNEL_START_TIMEOUT = 120
CELL_TIMEOUT = 300  # no cell of ours takes more than seconds; a hung one fails the run
KERNEL_LOG = "kernel.log"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_CHECK_SECONDS = 0.5

_KERNELSTATE = "__import__('dsarisk.kernelstate').kernelstate"  # an expression: binds no name in the kernel
_kernel_pids: set[int] = set()  # kernels this worker started and has not shut down yet


@dataclass(frozen=True)
class Job:
    """One notebook to execute."""

    name: str
    title: str
    source: Path
    output: Path
    parameters: dict[str, Any]
    cost: float = 1.0  # relative run time: the costliest start first, so no worker idles at the end


@dataclass(frozen=True)
class JobOutcome:
    """What became of a job: its duration, or where and why it failed."""

    name: str
    seconds: float
    error: str | None = None
    cell: int | None = None
    kernel: str = "new"  # "new": its kernel was started for it (ahead of need); "reused": one ran notebooks before
    times: dict[str, float] = field(default_factory=dict)  # seconds by part: kernel_start, imports, reset, cells...


def _ipc_kernel_manager(sockets: Path) -> type:
    """A kernel manager talking to its kernel over unix sockets in ``sockets``: kernels
    started together cannot collide on TCP ports, and nothing listens on the network.

    The kernel process's own stderr (its log, not the cells' output, which comes over the
    sockets) goes to ``sockets/kernel.log``: jupyter_client interrupts every kernel before
    shutting it down, and the kernel's "KeyboardInterrupt caught" line would otherwise reach
    the terminal; the log is quoted when a kernel fails. The kernel dies with its worker.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.clients: list[Any] = []

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return str(sockets / "kernel")

        async def start_kernel(self, **kw: Any) -> None:
            with open(sockets / KERNEL_LOG, "ab") as log:  # the kernel keeps its own descriptor
                await super().start_kernel(stderr=log, preexec_fn=_die_with_parent, **kw)
            if self.provisioner is not None and self.provisioner.pid is not None:  # type: ignore[attr-defined]
                _kernel_pids.add(self.provisioner.pid)  # type: ignore[attr-defined]

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            pid = getattr(self.provisioner, "pid", None)
            await super()._async_cleanup_resources(restart=restart)
            _kernel_pids.discard(pid)  # type: ignore[arg-type]

        def client(self, **kwargs: Any) -> Any:
            """A client, remembered so that its channels can be closed after the notebook
            (nbclient leaves them open on a kernel manager it does not own)."""
            kc = super().client(**kwargs)
            self.clients.append(kc)
            return kc

        def close_clients(self) -> None:
            for kc in self.clients:
                kc.stop_channels()
            self.clients.clear()

    return IpcKernelManager


def _kernel_log_tail(sockets: Path, lines: int = 5) -> str:
    try:
        text = (sockets / KERNEL_LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return f" (kernel log: {' | '.join(tail)})" if tail else ""


def _is_kernel_start_failure(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return "ZMQError" in text or "Address already in use" in text or "Kernel died before replying" in text


class KernelStateError(RuntimeError):
    """Code the engine runs in a kernel (warm-up, reset) failed: the kernel is replaced."""


class _Kernel:
    """A worker's kernel: started ahead of need with the warm-up imports done, then reused
    notebook after notebook, its state restored by ``dsarisk.kernelstate`` in between.

    Parameters
    ----------
    warm_up : str
        Code run once at start (the imports every notebook makes).
    """

    def __init__(self, warm_up: str) -> None:
        from jupyter_core.utils import ensure_event_loop

        self.loop = ensure_event_loop()
        self._folder = tempfile.TemporaryDirectory(prefix="dsarisk-kernel-")
        self.sockets = Path(self._folder.name)
        self.km = _ipc_kernel_manager(self.sockets)(kernel_name="python3")
        self.used = False
        self.spent = False  # its state could not be restored: replace it
        started = time.perf_counter()
        try:
            # history in memory: a reused kernel starts a new history session per notebook, and
            # kernels running side by side would otherwise share (and lock) one SQLite file
            self.loop.run_until_complete(self.km.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"]))
            self._run(f"{_KERNELSTATE}.record_namespace()")
            ready = time.perf_counter()
            self._run(f"{warm_up}\n{_KERNELSTATE}.record()")
        except BaseException:
            self.close()
            raise
        self.start_times = {"kernel_start": ready - started, "imports": time.perf_counter() - ready}

    def _run(self, code: str, expression: str | None = None) -> str | None:
        """Run ``code`` in the kernel outside any notebook; return ``expression``'s text value."""
        async def run() -> dict[str, Any]:
            kc = self.km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=KERNEL_START_TIMEOUT)
            return await kc.execute_interactive(
                code, store_history=False, timeout=CELL_TIMEOUT, output_hook=lambda message: None,
                user_expressions={"value": expression} if expression else None)

        try:
            content = self.loop.run_until_complete(run())["content"]
        finally:
            self.km.close_clients()
        if content["status"] != "ok":
            raise KernelStateError(f"{content.get('ename')}: {content.get('evalue')}{_kernel_log_tail(self.sockets)}")
        if expression is None:
            return None
        value = content["user_expressions"]["value"]
        if value.get("status") != "ok":
            raise KernelStateError(f"{value.get('ename')}: {value.get('evalue')}")
        return value["data"]["text/plain"]

    def execute(self, job: Job) -> JobOutcome:
        """Execute ``job``'s notebook with papermill on this kernel."""
        import papermill
        from papermill.exceptions import PapermillExecutionError

        started = time.perf_counter()
        times = {"kernel_start": 0.0, "imports": 0.0} if self.used else dict(self.start_times)
        kernel = "reused" if self.used else "new"
        self.used = True
        try:
            executed = papermill.execute_notebook(
                str(job.source), str(job.output), parameters=job.parameters, kernel_name="python3",
                progress_bar=False, start_timeout=KERNEL_START_TIMEOUT, execution_timeout=CELL_TIMEOUT,
                # papermill writes the notebook once at the end, and on an error before raising;
                # saving it after every cell as well costs a second per notebook
                request_save_on_cell_execute=False, km=self.km)
        except PapermillExecutionError as exc:
            return JobOutcome(job.name, time.perf_counter() - started, error=f"{exc.ename}: {exc.evalue}",
                              cell=exc.exec_count, kernel=kernel)
        except Exception as exc:  # the kernel died or a cell timed out: name it, never hang
            return JobOutcome(job.name, time.perf_counter() - started, kernel=kernel,
                              error=f"{type(exc).__name__}: {exc}{_kernel_log_tail(self.sockets)}")
        finally:
            self.km.close_clients()
        times["cells"] = sum(cell.metadata.get("papermill", {}).get("duration") or 0.0 for cell in executed.cells)
        # the kernel is made ready for the next notebook now, in the same round trip that asks
        # how long this one spent encoding figures
        resetting = time.perf_counter()
        try:
            times["figure_encoding"] = float(self._run("pass", f"{_KERNELSTATE}.restore()") or 0.0)
        except KernelStateError:  # the notebook is done; its kernel cannot serve another
            self.spent = True
        times["reset"] = time.perf_counter() - resetting
        return JobOutcome(job.name, time.perf_counter() - started, kernel=kernel,
                          times={key: round(value, 3) for key, value in times.items()})

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.km.shutdown_kernel(now=True))
        except Exception:  # a kernel that is already dead has nothing to shut down
            pass
        self._folder.cleanup()


_worker: dict[str, Any] = {"kernel": None, "warm_up": "", "reuse": True}


def _start_kernel() -> _Kernel:
    """A new kernel for this worker; one retry if it could not start (a slow machine)."""
    try:
        return _Kernel(_worker["warm_up"])
    except Exception as exc:
        if not _is_kernel_start_failure(exc) and not isinstance(exc, TimeoutError):
            raise
        return _Kernel(_worker["warm_up"])


def execute_job(job: Job) -> JobOutcome:
    """Execute one notebook (in a worker process) on the worker's warm kernel. A kernel that
    ran a failed notebook is replaced, and so is every kernel when reuse is off."""
    started = time.perf_counter()
    kernel = _worker["kernel"]
    if kernel is None:
        try:
            kernel = _worker["kernel"] = _start_kernel()
        except Exception as exc:
            return JobOutcome(job.name, time.perf_counter() - started, error=f"kernel start: {type(exc).__name__}: {exc}")
    outcome = kernel.execute(job)
    if outcome.error or kernel.spent or not _worker["reuse"]:
        kernel.close()
        _worker["kernel"] = None
    return outcome


def skip_iri_format_checker() -> None:
    """Keep jsonschema (imported by nbformat, hence by papermill and nbconvert) from importing
    ``rfc3987_syntax``: that import compiles dozens of Lark grammars, over a second per process,
    only to check the ``iri`` formats that no notebook schema uses
    (python-jsonschema/jsonschema#1428). jsonschema treats the module as optional; call this
    before jsonschema is first imported in the process."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "not installed"


def _die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``signum`` to this process when its parent dies (a no-op elsewhere).

    Runs in a worker (SIGTERM, so that it can take its kernel along) and, between fork and
    exec, in each kernel (SIGKILL): neither outlives the process that started it, even a
    main process killed with ``kill -9``."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the parent watchdog still applies
        pass


def _end_worker(*_: Any) -> None:
    """Kill this worker's kernels, wait until they are gone, and exit: once the main process
    has seen the worker end, no notebook can still write into the staging folder."""
    for pid in list(_kernel_pids):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    if _worker["kernel"] is not None:
        _worker["kernel"]._folder.cleanup()
    os._exit(1)


def _close_kernel() -> None:
    if _worker["kernel"] is not None:
        _worker["kernel"].close()
        _worker["kernel"] = None


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    _end_worker()


def _init_worker(parent: int, warm_up: str, reuse: bool) -> None:
    """Prepare a worker process and start its kernel ahead of need.

    Ctrl-C is the main process's to handle (a worker would only print a traceback), SIGTERM
    takes the kernels along, and the worker dies with its parent (prctl on Linux, a thread
    watching the parent's pid everywhere)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since birth (worker_pool)
    signal.signal(signal.SIGTERM, _end_worker)
    _die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        _end_worker()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="dsarisk-parent-watch").start()
    skip_iri_format_checker()
    os.environ.pop("MPLBACKEND", None)  # an inherited MPLBACKEND=Agg would stop kernels from capturing images
    _worker.update(warm_up=warm_up, reuse=reuse)
    Finalize(None, _close_kernel, exitpriority=10)  # a worker told to exit shuts its kernel down
    try:
        _worker["kernel"] = _start_kernel()
    except Exception:  # the first job starts one again and names the error
        _worker["kernel"] = None


def worker_pool(workers: int, *, warm_up: str = "", reuse: bool = True) -> ProcessPoolExecutor:
    """Worker processes for notebooks, each with a kernel started ahead of need that has run
    ``warm_up``: start them early so that their start-up overlaps whatever the caller does
    before submitting jobs. With ``reuse`` off, every notebook gets a kernel of its own."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(), warm_up, reuse))
    # The workers are born with Ctrl-C blocked and ignore it once ready (_init_worker): one that
    # is still importing would otherwise print a traceback. The main process gets it on unblocking.
    # (Blocked only now: the pool's resource tracker, started above, unblocks it when it starts.)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for _ in range(workers):  # a pool starts a worker per submitted task, up to max_workers
            pool.submit(int)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pool


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now, running notebooks included, and wait until its workers, and with
    them their kernels, are gone."""
    processes = list((pool._processes or {}).values())  # type: ignore[attr-defined]  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


POLL_SECONDS = 0.2  # how soon a Ctrl-C that Python dropped is honoured (see interrupts)


def execute_all(jobs: list[Job], workers: int, on_done: Callable[[JobOutcome], None], *,
                pool: ProcessPoolExecutor | None = None, warm_up: str = "") -> dict[str, JobOutcome]:
    """Execute ``jobs`` on ``workers`` processes (of ``pool`` when given: the caller shuts it
    down; else of a new pool whose kernels run ``warm_up``); stop at the first failed job.
    ``on_done`` is called with each outcome as it arrives.
    """
    outcomes: dict[str, JobOutcome] = {}
    executor = pool or worker_pool(workers, warm_up=warm_up)
    ordered = sorted(jobs, key=lambda job: -job.cost)
    futures: dict[Future[JobOutcome], Job] = {executor.submit(execute_job, job): job for job in ordered}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            if INTERRUPTED.is_set():
                raise KeyboardInterrupt
            for future in done:
                outcome = future.result()
                outcomes[outcome.name] = outcome
                on_done(outcome)
                if outcome.error:
                    return outcomes
    except BrokenProcessPool:
        raise PipelineError("a notebook worker process died (out of memory or killed); no report was written") from None
    finally:
        for other in pending:
            other.cancel()
        if pool is None:
            executor.shutdown()
    return outcomes
