"""Peak resident memory and CPU time of a process tree, sampled in a background thread.

Shared by the benchmarks: a Spark job's memory is spread over the driver JVM, the Python
driver and every Python worker, so the figure that matters is the sum over the tree.

    with PeakRSS() as mem:        # this process and its descendants
        ...
    mem.peak, mem.gib, mem.cpu    # bytes, GiB, CPU seconds of the tree
    mem.tree_cpu()                # CPU seconds so far (live tree + what it reaped)
"""

from __future__ import annotations

import contextlib
import threading

import psutil


class PeakRSS:
    """Samples the summed RSS of a process (default: this one) and its descendants.

    ``phase`` labels the samples: ``peaks[phase]`` is the peak seen under each label, so
    one sampler can split a long run (pipeline stages) while ``peak`` stays the overall one.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.2, tree: bool = True
                 ) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.tree = tree
        self.phase = "all"
        self.peaks: dict[str, int] = {}
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._tree_cpu = 0.0

    def _processes(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [self.root, *(self.root.children(recursive=True) if self.tree else [])]
        return []

    def _sample(self) -> None:
        total = 0
        tree_cpu = 0.0
        for p in self._processes():
            with contextlib.suppress(psutil.Error):  # a worker may exit mid-sample
                total += p.memory_info().rss
                t = p.cpu_times()
                self._cpu_last[p.pid] = t.user + t.system  # kept after a worker exits
                # A child that exited and was reaped moves into its parent's children_*
                # times, so the live tree's sum counts short-lived Python workers too.
                tree_cpu += t.user + t.system + t.children_user + t.children_system
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), total)
        # Monotone: a child that exited but is not reaped yet is briefly in neither sum.
        self._tree_cpu = max(self._tree_cpu, tree_cpu)

    def tree_cpu(self) -> float:
        """CPU seconds (user + system) the tree used so far, counted from its start: every
        live process plus the children its members reaped (Spark's short-lived Python
        workers included). Samples now, so phase boundaries get a fresh figure."""
        self._sample()
        return self._tree_cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peaks = {}
        self._cpu_last = {}
        self._sample()
        self._cpu_start = dict(self._cpu_last)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.cpu = sum(v - self._cpu_start.get(pid, 0.0) for pid, v in self._cpu_last.items())

    @property
    def peak(self) -> int:
        """Peak bytes over every phase."""
        return max(self.peaks.values(), default=0)

    @property
    def gib(self) -> float:
        """Peak in GiB."""
        return self.peak / 2**30
