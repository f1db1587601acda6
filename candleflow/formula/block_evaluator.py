"""Evaluation of node trees on blocks of symbols.

A ``ChunkContext`` evaluates nodes for a block of rows (symbols) of one panel as 2-D arrays, with a
cache keyed by the nodes' canonical text, so that sub-expressions shared by the formulas of a scan
set (``close``, ``sma(close, 50)``, ...) are computed once per block.

Bar counting. Everything that counts bars (offsets, windows, TA-Lib indicators) counts the
symbol's *own* bars. A block whose symbols each have one contiguous run of bars is evaluated on the
panel's time grid directly. If a symbol lacks a bar in the middle of its history (a gap: a halt, a
minute without trades), the block is evaluated in a *compact* layout where each row holds only that
symbol's bars, right-aligned, and results are mapped back to the grid. So ``close[1]`` is the
symbol's previous bar and ``sma(close, 20)`` its last 20 bars, whatever other symbols did; a gap is
never a NaN that poisons a smoothed indicator.

Cross-sectional functions (rank, percentile, zscore) need their argument for every symbol of the
panel: a ``PanelCache`` (one per panel per evaluation) computes the argument over all rows, block by
block, computes the cross section, and keeps it for every later block.

Time limits: a ``Deadline`` holds the deadlines of one block's evaluation, one per scan, checked
between steps (nodes, every 32 rows of TA-Lib, every chunk of a cross section). A cross section is
computed within the deadline of the scan and block that first needs it; its argument over the
whole panel and its kernel count as that block's time.

``tf(interval, x)`` evaluates x in a context on the other panel for the same symbols and aligns it
(see ``PanelCache.source_columns``).
"""

from __future__ import annotations

import math
import time
from functools import reduce
from typing import Mapping, Sequence

import numpy as np

from ..isolation import batch_then_one_by_one, error_text
from ..market.intervals import DAILY, INTRADAY_SECONDS
from . import kernels as k
from .errors import ScanTimeout
from .functions import CROSS_SECTION, ROWWISE, TIMEFRAME
from .limits import CHUNK_SYMBOLS
from .nodes import Arith, Call, Compare, Field, Logic, Neg, Node, Not, Num, Offset
from .panel import BarPanel

#: Longest possible daily session, in seconds: an intraday bar less than this after the start of
#: a daily bar belongs to that daily bar's session.
MAX_SESSION_SECONDS = 86400


class Cancelled(Exception):
    """Raised between blocks when the cancel event is set."""


class Deadline:
    """The deadlines of one block's evaluation (one per scan), shared by its contexts and
    sub-contexts: each scan gets ``limit_s`` seconds of wall-clock time on the block from its first
    ``start`` there, for everything it computes, including a second try of the block's symbols one
    by one after an unexpected error. ``limit_s`` None: no limit."""

    __slots__ = ("limit_s", "scan", "current", "_by_scan")

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.scan = ""
        #: the ``time.perf_counter()`` value by which the current scan must be done (None: none)
        self.current: float | None = None
        self._by_scan: dict[str, float] = {}

    def start(self, scan: str) -> None:
        """Evaluate ``scan`` from now on, against its deadline on this block."""
        self.scan = scan
        if self.limit_s is not None:
            self.current = self._by_scan.setdefault(scan, time.perf_counter() + self.limit_s)

    def check(self) -> None:
        if self.current is not None and time.perf_counter() > self.current:
            self.expire()

    def expire(self) -> None:
        raise ScanTimeout(self.scan, self.limit_s)


class EvalEnv:
    """What all blocks of one evaluation share: the panels, one PanelCache per panel, the cancel
    event and the time limit of a scan on a block (each block gets its own ``deadline()``)."""

    def __init__(
        self,
        panels: Mapping[str, BarPanel],
        *,
        cancel=None,
        time_limit_s: float | None = None,
        chunk_symbols: int = CHUNK_SYMBOLS,
    ) -> None:
        self.panels = panels
        self.cancel = cancel
        self.time_limit_s = time_limit_s
        self.chunk_symbols = max(1, int(chunk_symbols))
        self.caches: dict[str, PanelCache] = {}
        self.cross_section_seconds = 0.0
        self._cs_depth = 0

    def cache(self, interval: str) -> "PanelCache":
        got = self.caches.get(interval)
        if got is None:
            panel = self.panels.get(interval)
            if panel is None:
                raise ValueError(f"no {interval} panel was given")
            got = self.caches[interval] = PanelCache(self, panel)
        return got

    def deadline(self) -> Deadline:
        return Deadline(self.time_limit_s)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()


class PanelCache:
    """What one evaluation computes once per panel and keeps for every block: cross sections,
    their arguments over all rows, the rows' errors there, alignment indexes of tf()."""

    def __init__(self, env: EvalEnv, panel: BarPanel) -> None:
        self.env = env
        self.panel = panel
        self.cs: dict[str, np.ndarray] = {}
        self.full: dict[str, np.ndarray] = {}
        self.row_errors: dict[int, str] = {}
        #: keys of the cross sections that ran out of time (not tried again in this evaluation)
        self.timed_out: set[str] = set()
        self._source_cols: dict[str, np.ndarray] = {}
        self._rank_neg: dict[str, np.ndarray] = {}

    def cross_section(self, node: Call, deadline: Deadline) -> np.ndarray:
        return self._once(node.key, deadline, lambda: node.spec.impl(self.argument(node, deadline), deadline.check))

    def rank_top(self, node: Call, top: int, deadline: Deadline) -> np.ndarray:
        """rank(x) <= top for every row and bar, by partition instead of a full sort (for a
        function declared ``top_k``)."""

        def compute() -> np.ndarray:
            res, neg = k.cs_top_k(self.argument(node, deadline), top, deadline.check)
            self._rank_neg[node.key] = neg
            return res

        return self._once(f"{node.key} <= {top}", deadline, compute)

    def _once(self, key: str, deadline: Deadline, compute) -> np.ndarray:
        """The cross section ``key``, computed once per evaluation (its time is counted in
        ``cross_section_seconds``). One that ran out of time is not computed again: a later
        block that needs it runs out at once instead of spending the limit on it once more."""
        got = self.cs.get(key)
        if got is not None:
            return got
        if key in self.timed_out:
            deadline.expire()
        env = self.env
        t0 = time.perf_counter()
        env._cs_depth += 1
        try:
            res = self.cs[key] = compute()
        except ScanTimeout:
            self.timed_out.add(key)
            raise
        finally:
            env._cs_depth -= 1
            if env._cs_depth == 0:
                env.cross_section_seconds += time.perf_counter() - t0
        return res

    def argument(self, node: Call, deadline: Deadline) -> np.ndarray:
        """The argument of a cross-sectional call for every row (computed once)."""
        arg = node.args[0]
        full = self.full.get(arg.key)
        if full is None:
            full = self.full[arg.key] = self.evaluate_all(arg, deadline)
        return full

    def rank_at(self, node: Call, rows: np.ndarray, cols: np.ndarray, deadline: Deadline) -> np.ndarray | None:
        """rank values at some cells only, if a rank_top of this node has been computed."""
        neg = self._rank_neg.get(node.key)
        if neg is None:
            return None
        full = self.full[node.args[0].key]
        return k.cs_rank_at(neg, rows, cols, full[rows, cols], deadline.check)

    def evaluate_all(self, node: Node, deadline: Deadline) -> np.ndarray:
        """node's values for every row of the panel, on the grid (block by block, against the
        deadline of the block that asked for them). A block that raises is evaluated again row by
        row: a row that fails keeps NaN values and gets its error in ``row_errors``."""
        p = self.panel
        out = np.full((p.n_symbols, p.n_bars), np.nan)

        def evaluate_rows(rows: Sequence[int]) -> None:
            self.env.check_cancel()
            start, stop = rows[0], rows[-1] + 1
            ctx = ChunkContext(self, slice(start, stop), deadline)
            out[start:stop] = ctx.grid_values(node)
            for r, msg in ctx.row_errors.items():
                self.row_errors.setdefault(start + r, msg)

        def record_failure(row: int, error: Exception) -> None:
            self.row_errors.setdefault(row, error_text(error))

        step = self.env.chunk_symbols
        for start in range(0, p.n_symbols, step):
            rows = range(start, min(start + step, p.n_symbols))
            batch_then_one_by_one(rows, evaluate_rows, record_failure, reraise=(Cancelled, ScanTimeout))
        return out

    def source_columns(self, interval: str) -> np.ndarray:
        """For each bar of this panel: the latest bar of the ``interval`` panel a tf() value may
        come from (-1 for none). Daily: the last session strictly before the current bar's session
        (the daily bar k with the greatest start <= t is the current session if t is less than 24 h
        after its start; then k-1 is used, else k). Intraday: the last bar whose end
        (start + length) is <= the current bar's start. No look-ahead either way; completeness is
        checked per symbol afterwards."""
        got = self._source_cols.get(interval)
        if got is None:
            t = self.panel.bar_start
            q = self.env.panels[interval].bar_start
            if len(q) == 0:
                got = np.full(len(t), -1, dtype=np.int64)
            elif interval == DAILY:
                kk = np.searchsorted(q, t, side="right") - 1
                in_session = (kk >= 0) & (t < q[np.clip(kk, 0, None)] + MAX_SESSION_SECONDS)
                got = np.where(in_session, kk - 1, kk).astype(np.int64)
            else:
                ends = q + INTRADAY_SECONDS[interval]
                got = (np.searchsorted(ends, t, side="right") - 1).astype(np.int64)
            self._source_cols[interval] = got
        return got


def _has_top_k(node: Node) -> bool:
    """A call of a function declared ``top_k`` (its values are ranks, 1 = highest)."""
    return isinstance(node, Call) and node.spec.top_k


class ChunkContext:
    """Evaluates nodes for a block of rows of one panel (see the module docstring)."""

    def __init__(self, panel_cache: PanelCache, rows, deadline: Deadline) -> None:
        self.panel_cache = panel_cache
        self.env = panel_cache.env
        self.panel = panel_cache.panel
        self.rows = rows
        self.deadline = deadline
        self.computed: dict[str, object] = {}
        self.memo_cache: dict[object, object] = {}
        self.row_errors: dict[int, str] = {}
        #: row errors by the key of the node whose computation raised them
        self.errors_by_key: dict[str, dict[int, str]] = {}
        self._stack: list[str] = []
        self._subs: dict[str, tuple[ChunkContext, np.ndarray]] = {}
        self._fields: dict[str, np.ndarray] = {}
        present = self.panel.present[rows]
        self.n_rows = present.shape[0]
        self.counts = present.sum(axis=1)
        g = present.shape[1]
        if self.n_rows and g:
            first = present.argmax(axis=1)
            last = g - 1 - present[:, ::-1].argmax(axis=1)
            holes = bool(((self.counts > 0) & (self.counts != last - first + 1)).any())
        else:
            holes = False
        self.compact = holes
        if holes:
            w = int(self.counts.max())
            self.first_col = w - self.counts
            r_idx, g_idx = np.nonzero(present)
            offsets = np.concatenate(([0], np.cumsum(self.counts)[:-1]))
            within = np.arange(len(r_idx)) - offsets[r_idx]
            c_idx = w - self.counts[r_idx] + within
            self._r, self._g, self._c = r_idx, g_idx, c_idx
            self.width = w
            self.present = np.zeros((self.n_rows, w), dtype=bool)
            self.present[r_idx, c_idx] = True
        else:
            self.width = g
            self.present = present
            self.first_col = present.argmax(axis=1) if g else np.zeros(self.n_rows, dtype=np.int64)
        self._grid_col: np.ndarray | None = None

    # ------------------------------------------------------------------ layout

    @property
    def symbols(self) -> list[str]:
        idx = range(self.panel.n_symbols)[self.rows] if isinstance(self.rows, slice) else self.rows
        return [self.panel.symbols[i] for i in idx]

    def to_grid(self, arr: np.ndarray) -> np.ndarray:
        if not self.compact:
            return arr
        out = np.full((self.n_rows, self.panel.n_bars), np.nan)
        out[self._r, self._g] = arr[self._r, self._c]
        return out

    def from_grid(self, arr: np.ndarray) -> np.ndarray:
        if not self.compact:
            return arr
        out = np.full((self.n_rows, self.width), np.nan)
        out[self._r, self._c] = arr[self._r, self._g]
        return out

    def has_history(self, n: int) -> np.ndarray:
        """True on each bar that is at least the symbol's n-th own bar (each row's bars form one
        contiguous run in the layout, starting at ``first_col``)."""
        return np.arange(self.width) >= (self.first_col + (n - 1))[:, None]

    @property
    def grid_col(self) -> np.ndarray:
        """Grid column of each cell of the layout (-1 for padding)."""
        if self._grid_col is None:
            if self.compact:
                gc = np.full((self.n_rows, self.width), -1, dtype=np.int64)
                gc[self._r, self._c] = self._g
            else:
                gc = np.broadcast_to(np.arange(self.width, dtype=np.int64), (self.n_rows, self.width))
            self._grid_col = gc
        return self._grid_col

    def as_array(self, v) -> np.ndarray:
        """A value as a 2-D array of the layout (a constant becomes a series on the symbol's bars)."""
        if np.ndim(v) == 0:
            return np.where(self.present, float(v), np.nan)
        return v

    def grid_values(self, node: Node) -> np.ndarray:
        return self.to_grid(self.as_array(self.eval(node)))

    # ------------------------------------------------------------------ services for functions

    def field(self, name: str) -> np.ndarray:
        got = self._fields.get(name)
        if got is None:
            got = self.from_grid(self.panel.field(name)[self.rows])
            self._fields[name] = got
        return got

    def tick(self) -> None:
        self.deadline.check()

    def memo(self, key, compute):
        """``compute()`` once per ``key`` in this context. The key must identify the value by
        content (numbers, strings, canonical text), never by ``id()`` of a temporary object: see
        ``memo_for``."""
        got = self.memo_cache.get(key)
        if got is None:
            got = self.memo_cache[key] = compute()
        return got

    def memo_for(self, arr: np.ndarray, key: tuple, compute):
        """``compute()`` once per (array, ``key``): e.g. the three outputs of MACD shared by
        macd/macd_signal/macd_hist of the same argument. Keyed by the identity of ``arr``, so the
        entry keeps ``arr`` itself alive: an id is only unique while its object lives, and an
        argument array that is not otherwise cached (a constant broadcast by ``as_array``) is freed
        after the call, after which a different array can get the same id and would be handed the
        stale result."""
        full_key = ("array", id(arr), *key)
        got = self.memo_cache.get(full_key)
        if got is None or got[0] is not arr:
            got = self.memo_cache[full_key] = (arr, compute())
        return got[1]

    def talib(self, fn, inputs, params, n_out: int) -> list[np.ndarray]:
        name = getattr(fn, "__name__", "talib")

        def on_error(r: int, exc: BaseException) -> None:
            self.record_error(r, f"{name}: {exc}")

        return k.talib_rows(fn, inputs, params, n_out, on_error, self.tick)

    def record_error(self, row: int, message: str) -> None:
        key = self._stack[-1] if self._stack else ""
        self.errors_by_key.setdefault(key, {}).setdefault(row, message)
        self.row_errors.setdefault(row, message)

    def errors_of(self, keys) -> dict[int, str]:
        """Row errors raised while computing any of the nodes with these keys."""
        out: dict[int, str] = {}
        for key in keys:
            for r, msg in self.errors_by_key.get(key, {}).items():
                out.setdefault(r, msg)
        return out

    # ------------------------------------------------------------------ evaluation

    def eval(self, node: Node):
        key = node.key
        got = self.computed.get(key)
        if got is not None:
            return got
        self.deadline.check()
        self._stack.append(key)
        try:
            value = self._compute(node)
        finally:
            self._stack.pop()
        self.deadline.check()
        self.computed[key] = value
        return value

    def _compute(self, node: Node):
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Field):
            return self.field(node.name)
        if isinstance(node, Compare):
            fast = self._rank_compare(node)
            if fast is not None:
                return fast
            return k.compare(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, Arith):
            if node.op == "**":
                return k.power(self.eval(node.left), node.right.value)  # type: ignore[attr-defined]
            return k.ARITH[node.op](self.eval(node.left), self.eval(node.right))
        if isinstance(node, Logic):
            fn = k.kleene_and if node.op == "and" else k.kleene_or
            return reduce(fn, [self.eval(o) for o in node.operands])
        if isinstance(node, Not):
            return k.kleene_not(self.eval(node.x))
        if isinstance(node, Neg):
            return k.neg(self.eval(node.x))
        if isinstance(node, Offset):
            return k.shift(self.as_array(self.eval(node.x)), node.bars)
        if isinstance(node, Call):
            cat = node.spec.category
            if cat == ROWWISE:
                args = [self.as_array(self.eval(a)) if isinstance(a, Node) else a for a in node.args]
                return node.spec.impl(self, *args)
            if cat == CROSS_SECTION:
                grid = self.panel_cache.cross_section(node, self.deadline)
                for r, msg in self._cache_errors():
                    self.record_error(r, msg)
                return self.from_grid(grid[self.rows])
            if cat == TIMEFRAME:
                return self._timeframe(node)
        raise TypeError(f"cannot evaluate {type(node).__name__}")  # unreachable for parsed trees

    _MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}

    def _rank_compare(self, node: Compare):
        """``rank(x) <= K`` and the like (``<``, ``>``, ``>=``, either side) for a function declared
        ``top_k``, when the full rank has not been computed anyway: the cheaper top-k test of the
        panel cache. Same values."""
        left, right, op = node.left, node.right, node.op
        if isinstance(right, Num) and _has_top_k(left):
            rank, bound = left, right.value
        elif isinstance(left, Num) and _has_top_k(right):
            rank, bound, op = right, left.value, self._MIRROR.get(op, op)
        else:
            return None
        if op not in self._MIRROR or rank.key in self.computed or rank.key in self.panel_cache.cs:
            return None
        # ranks are whole numbers: rank <= K <=> rank <= floor(K); rank < K <=> rank <= ceil(K) - 1
        if op in ("<=", ">"):
            kk = math.floor(bound)
        else:
            kk = math.ceil(bound) - 1
        kk = int(min(max(kk, 0), self.panel.n_symbols))
        grid = self.panel_cache.rank_top(rank, kk, self.deadline)
        for r, msg in self._cache_errors():
            self.record_error(r, msg)
        out = self.from_grid(grid[self.rows])
        if op in (">", ">="):
            out = k.kleene_not(out)
        return out

    def values_at(self, node: Node, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        """node's values at the layout cells (rr, cc) (for the terms of matches): the rank of a
        top-k test is counted at those cells only instead of ranking everything."""
        if _has_top_k(node) and node.key not in self.computed:
            idx = np.arange(self.panel.n_symbols)[self.rows]
            got = self.panel_cache.rank_at(node, idx[rr], self.grid_col[rr, cc], self.deadline)
            if got is not None:
                return got
        return self.as_array(self.eval(node))[rr, cc]

    def _cache_errors(self):
        errs = self.panel_cache.row_errors
        if not errs:
            return []
        idx = range(self.panel.n_symbols)[self.rows] if isinstance(self.rows, slice) else self.rows
        return [(i, errs[r]) for i, r in enumerate(idx) if r in errs]

    # ------------------------------------------------------------------ other intervals

    def sub_context(self, interval: str) -> tuple["ChunkContext", np.ndarray]:
        """A context on the ``interval`` panel for this block's symbols, and the local rows of
        this block that the other panel has."""
        got = self._subs.get(interval)
        if got is None:
            cache = self.env.cache(interval)
            q_rows = cache.panel.rows_of(self.symbols)
            sel = np.flatnonzero(q_rows >= 0)
            got = (ChunkContext(cache, q_rows[sel], self.deadline), sel)
            self._subs[interval] = got
        return got

    def _timeframe(self, node: Call):
        interval, x = node.args
        if interval == self.panel.interval:
            return self.eval(x)
        sub, sel = self.sub_context(interval)
        out = np.full((self.n_rows, self.panel.n_bars), np.nan)
        if len(sel):
            values = sub.grid_values(x)
            last_done = sub.memo("last_done", lambda: k.last_completed_index(sub.panel.complete[sub.rows]))
            out[sel] = k.align(values, last_done, self.panel_cache.source_columns(interval))
            for r, msg in sub.row_errors.items():
                self.record_error(int(sel[r]), msg)
        return self.from_grid(out)
