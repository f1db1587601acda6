"""Peak resident memory of a process and all its descendants, sampled from /proc.

Two sums: RSS, which counts a page shared by several processes once in each (the step processes
a forkserver forks share its imported modules), and PSS, which splits a shared page between the
processes that share it, so that the sum is the memory the tree takes.
"""

import os
import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def tree_memory_bytes(root: int) -> tuple[int, int]:
    """Summed (RSS, PSS) of ``root`` and its descendants."""
    rss = pss = 0
    stack = [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        try:
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            pss += _pss_bytes(pid)
        except OSError:
            continue
        stack += _children(pid)
    return rss, pss


def _pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakMemorySampler:
    """Samples the tree's summed RSS and PSS every ``interval`` seconds until stopped; keeps the
    peak of each (``peak``: RSS, ``peak_pss``)."""

    def __init__(self, root: int, interval: float = 0.05):
        self.root, self.interval, self.peak, self.peak_pss = root, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory_bytes(self.root)
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False
