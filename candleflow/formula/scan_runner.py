"""Running scans: many formulas over many symbols, in blocks, with progress, cancellation and time
limits (each block evaluated by ``block_evaluator``)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..isolation import batch_then_one_by_one, error_text
from ..market.intervals import INTERVALS, check_interval
from .compiler import CompiledFormula, compile_expression, compile_formula, is_timeframe
from .errors import FormulaError, ScanTimeout
from .block_evaluator import Cancelled, ChunkContext, Deadline, EvalEnv
from .limits import SCAN_TIME_LIMIT_S
from .nodes import walk
from .panel import BarPanel

_LOG = logging.getLogger("candleflow.formula")


@dataclass(frozen=True)
class Scan:
    """A named formula evaluated on bars of ``interval``."""

    name: str
    formula: str
    interval: str = "1d"


@dataclass
class Match:
    """The formula was true for ``symbol`` on the bar starting at ``bar_start``.

    ``values`` holds the value of every term of the formula (series and function values, keyed by
    their canonical text, e.g. ``"sma(close, 50)"``) on that bar.
    """

    scan: str
    symbol: str
    interval: str
    bar_start: int
    values: dict[str, float]


@dataclass
class SymbolResult:
    """All matches of one symbol.

    ``error``: why it could not be (fully) evaluated (a computation error, a scan that exceeded
    its time limit, "cancelled"; several: joined by "; "), else None. ``notes``: remarks that are
    not failures, e.g. "scan 'NAME': not enough 1d history: needs N bars, has M" (that scan gave no
    matches).
    """

    symbol: str
    matches: list[Match] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def required_history(scans: Sequence[Scan]) -> dict[str, int]:
    """Bars to load per interval across the scans: ``history_bars``, i.e. with the warm-up of
    smoothed functions (compile errors raise FormulaError)."""
    need: dict[str, int] = {}
    for scan in scans:
        for iv, n in compile_formula(scan.formula).history_bars(scan.interval).items():
            need[iv] = max(need.get(iv, 0), n)
    return dict(sorted(need.items(), key=lambda kv: INTERVALS.index(kv[0])))


@dataclass
class _Prepared:
    scan: Scan
    compiled: CompiledFormula
    minimum: dict[str, int]  # compiled.minimum_bars(scan.interval)
    keys: frozenset[str] = frozenset()


@dataclass
class _Found:
    """What the evaluation of one block produced for one symbol."""

    matches: list[Match] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: "_Found") -> None:
        self.matches.extend(other.matches)
        self.notes.extend(other.notes)
        self.errors.extend(other.errors)
        self.seconds += other.seconds


def _too_short(name: str, interval: str, need: int, have: int) -> str:
    return f"scan {name!r}: not enough {interval} history: needs {need} bars, has {have}"


def _shorter(interval: str, than: str) -> bool:
    return INTERVALS.index(interval) < INTERVALS.index(than)


def _prepare(scans: Sequence[Scan], panels: Mapping[str, BarPanel]) -> list[_Prepared]:
    out = []
    for scan in scans:
        compiled = compile_formula(scan.formula)
        check_interval(scan.interval)
        if scan.interval not in panels:
            raise ValueError(f"scan {scan.name!r} runs on {scan.interval} bars but no {scan.interval} panel was given")
        for node in walk(compiled.root):
            if is_timeframe(node):
                iv = node.args[0]
                if _shorter(iv, scan.interval):
                    raise FormulaError(
                        f'tf("{iv}", ...) cannot be used in a {scan.interval} scan: the interval must be at least '
                        f"as long as the scan's",
                        node.pos,
                    )
                if iv != scan.interval and iv not in panels:
                    raise ValueError(f"scan {scan.name!r} uses tf(\"{iv}\", ...) but no {iv} panel was given")
        keys = frozenset(n.key for n in walk(compiled.root))
        out.append(_Prepared(scan, compiled, compiled.minimum_bars(scan.interval), keys))
    return out


def evaluate_scans(
    scans: Sequence[Scan],
    panels: Mapping[str, BarPanel],
    *,
    since: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    time_limit_s: float | None = SCAN_TIME_LIMIT_S,
    logger: logging.Logger | None = None,
) -> list[SymbolResult]:
    """Evaluate scans over every symbol of their interval's panel.

    Returns one SymbolResult per symbol (the symbols of the scans' panels, in panel order; several
    intervals: the sorted union). Matches are reported for bars with ``bar_start >= since`` (all
    bars if None). A formula that does not compile, a scan interval without a panel, or a tf()
    interval shorter than the scan's raises before any work; everything else that goes wrong is
    per symbol: it goes into ``SymbolResult.error`` (several scans: messages joined by "; ") and
    the log (WARNING), and never affects other symbols.

    History: a symbol with fewer bars than a scan's ``minimum_bars`` (of any interval it uses) gets
    no matches from that scan and the note "scan 'NAME': not enough 1d history: needs N bars, has
    M" in ``SymbolResult.notes`` (logged at INFO): too little history is not an error. Otherwise a
    bar can match from the symbol's N-th own bar on (N = the minimum for the scan's interval). The
    panels are expected to hold ``required_history`` bars (the minimum plus a warm-up for smoothed
    functions); a symbol with less is evaluated on what it has.

    Work is done in blocks of symbols (``CHUNK_SYMBOLS``). ``progress(done, total)`` is called after
    each block and finally with ``(total, total)``. ``cancel`` is checked before each block (and
    between blocks of a cross-section computation); symbols not evaluated by then get the error
    "cancelled" (they count as done for progress). ``SymbolResult.seconds`` is the block's time
    divided by its size (plus an equal share of cross-section work).

    Time limit: each scan gets ``time_limit_s`` seconds of wall-clock time (None: no limit) on each
    block, for everything it computes there, including the cross sections it is the first to need
    (their argument over the whole panel and their kernels). The deadline is checked between
    steps: nodes, every 32 rows of a TA-Lib function, every chunk of bars of a cross section. A
    scan that runs out on a block raises ``ScanTimeout`` there, which fails that scan for every
    symbol of the block (except those with too little history) with its message, e.g. "scan 'slow'
    exceeded its time limit of 2 s"; the block is not evaluated again symbol by symbol, so one slow
    formula costs at most its limit per block, never the limit per symbol. The block's other scans
    and the other blocks go on; a cross section that ran out is not computed again, so the later
    blocks that need it fail at once.
    """
    prepared = _prepare(list(scans), panels)
    run = _ScanRun(prepared, panels, since, EvalEnv(panels, cancel=cancel, time_limit_s=time_limit_s),
                   logger if logger is not None else _LOG)
    return run.run(_Progress(progress, len(run.symbols), run.log))


class _Progress:
    """Calls ``progress(done, total)`` once per new ``done``; a failing callback is logged, never
    raised (a broken callback must not break the scan)."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int, log: logging.Logger) -> None:
        self.progress = progress
        self.total = total
        self.log = log
        self.last_reported = -1

    def report(self, done: int) -> None:
        if self.progress is None or done == self.last_reported:
            return
        self.last_reported = done
        try:
            self.progress(done, self.total)
        except Exception:  # logged, see the class docstring
            self.log.exception("progress callback failed")


class _ScanRun:
    """One ``evaluate_scans`` call: its symbols in blocks, what the blocks found, the results."""

    def __init__(self, prepared: list[_Prepared], panels: Mapping[str, BarPanel], since: int | None,
                 env: EvalEnv, log: logging.Logger) -> None:
        self.panels = panels
        self.since = since
        self.env = env
        self.log = log
        #: the prepared scans by interval, in order of first appearance
        self.groups: dict[str, list[_Prepared]] = {}
        for p in prepared:
            self.groups.setdefault(p.scan.interval, []).append(p)
        if len(self.groups) == 1:
            self.symbols = list(panels[next(iter(self.groups))].symbols)
        else:
            self.symbols = sorted({s for iv in self.groups for s in panels[iv].symbols})
        self.results = {s: SymbolResult(s) for s in self.symbols}
        self.errors: dict[str, list[str]] = {}
        #: how many symbols (in order) have been evaluated; the others are cancelled
        self.done = 0

    def run(self, progress: _Progress) -> list[SymbolResult]:
        try:
            self._run_blocks(progress)
        except Cancelled:
            self._cancel_the_rest()
        self._share_cross_section_time()
        self._report_outcomes()
        progress.report(len(self.symbols))
        return [self.results[s] for s in self.symbols]

    def _run_blocks(self, progress: _Progress) -> None:
        step = self.env.chunk_symbols
        for start in range(0, len(self.symbols), step):
            self.env.check_cancel()
            chunk = self.symbols[start : start + step]
            found, share = self._evaluate_block(chunk)
            self._record(chunk, found, share)
            self.done = start + len(chunk)
            progress.report(self.done)

    def _evaluate_block(self, chunk: list[str]) -> tuple[dict[str, _Found], float]:
        """What the scans found for a block of symbols, and a symbol's share of the block's time
        (without the cross sections computed meanwhile: those are shared by all symbols)."""
        started = time.perf_counter()
        cross_sections_before = self.env.cross_section_seconds
        found: dict[str, _Found] = {}
        for interval, group in self.groups.items():
            _IntervalBlock(self.env, self.panels[interval], group, self.since, self.log).evaluate(chunk, found)
        elapsed = time.perf_counter() - started - (self.env.cross_section_seconds - cross_sections_before)
        return found, max(elapsed, 0.0) / len(chunk)

    def _record(self, chunk: list[str], found: dict[str, _Found], share: float) -> None:
        for s in chunk:
            f = found.get(s)
            r = self.results[s]
            if f is None:
                r.seconds += share
                continue
            r.matches.extend(f.matches)
            r.notes.extend(f.notes)
            r.seconds += f.seconds if f.seconds else share
            if f.errors:
                self.errors.setdefault(s, []).extend(f.errors)

    def _cancel_the_rest(self) -> None:
        for s in self.symbols[self.done :]:
            self.results[s].matches = []
            self.results[s].notes = []
            self.errors[s] = ["cancelled"]
        self.log.warning("scan cancelled after %d of %d symbols", self.done, len(self.symbols))

    def _share_cross_section_time(self) -> None:
        if self.symbols and self.env.cross_section_seconds:
            share = self.env.cross_section_seconds / len(self.symbols)
            for r in self.results.values():
                r.seconds += share

    def _report_outcomes(self) -> None:
        """Log the notes and errors, and join each symbol's errors into ``SymbolResult.error``."""
        for s in self.symbols[: self.done]:
            if self.results[s].notes:
                self.log.info("symbol %s: %s", s, "; ".join(self.results[s].notes))
        for s, errs in self.errors.items():
            self.results[s].error = "; ".join(errs)
            if errs != ["cancelled"]:
                self.log.warning("symbol %s: %s", s, self.results[s].error)


class _IntervalBlock:
    """The scans of one interval on one block of symbols, against one ``Deadline``: all symbols
    at once, and after an unexpected error of the block, one by one (``batch_then_one_by_one``;
    cancellation is never isolated)."""

    def __init__(self, env: EvalEnv, panel: BarPanel, group: list[_Prepared], since: int | None,
                 log: logging.Logger) -> None:
        self.env = env
        self.panel = panel
        self.group = group
        self.since = since
        self.log = log
        self.deadline = env.deadline()
        #: when the evaluation of the current single symbol began (its seconds, failed or not)
        self._one_started = 0.0

    def evaluate(self, chunk: list[str], found: dict[str, _Found]) -> None:
        """Add what the scans find for the symbols of ``chunk`` to ``found``."""
        rows = self.panel.rows_of(chunk)
        for i in np.flatnonzero(rows < 0):
            notes = [_too_short(p.scan.name, p.scan.interval, p.minimum[p.scan.interval], 0) for p in self.group]
            _add(found, chunk[i], _Found(notes=notes))
        members = [(chunk[i], int(rows[i])) for i in np.flatnonzero(rows >= 0)]
        if not members:
            return

        def log_block_failure(error: Exception) -> None:
            self.log.error("block of %d symbols failed; evaluating them one by one", len(members), exc_info=error)

        for outcome in batch_then_one_by_one(members, self._evaluate, self._failed, work_one=self._evaluate_one,
                                             on_batch_failure=log_block_failure, reraise=(Cancelled,)):
            for s, f in outcome.items():
                _add(found, s, f)

    def _evaluate(self, members: Sequence[tuple[str, int]]) -> dict[str, _Found]:
        """``members``: (symbol, panel row) pairs."""
        rows = np.array([row for _, row in members], dtype=np.int64)
        syms = [s for s, _ in members]
        return _evaluate_rows(self.env, self.panel, _row_spec(rows), syms, self.group, self.since, self.deadline)

    def _evaluate_one(self, member: tuple[str, int]) -> dict[str, _Found]:
        self.env.check_cancel()
        self._one_started = time.perf_counter()
        outcome = self._evaluate([member])
        outcome[member[0]].seconds = time.perf_counter() - self._one_started
        return outcome

    def _failed(self, member: tuple[str, int], error: Exception) -> dict[str, _Found]:
        return {member[0]: _Found(errors=[error_text(error)], seconds=time.perf_counter() - self._one_started)}


def _row_spec(rows: np.ndarray) -> slice | np.ndarray:
    """The panel rows as a slice if they are consecutive (a view instead of a copy), else as they are."""
    if rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _add(found: dict[str, _Found], s: str, f: _Found) -> None:
    got = found.get(s)
    if got is None:
        found[s] = f
    else:
        got.merge(f)


def _evaluate_rows(env: EvalEnv, panel: BarPanel, rows, syms: list[str], group: list[_Prepared], since: int | None,
                   deadline: Deadline) -> dict[str, _Found]:
    """Matches, notes (too little history) and errors of the scans of ``group`` for the symbols
    ``syms`` (panel rows ``rows``). A scan that runs out of time gives its symbols the timeout's
    message and no matches; the other scans go on."""
    ctx = ChunkContext(env.cache(panel.interval), rows, deadline)
    out = {s: _Found() for s in syms}
    since_ok = None if since is None else panel.bar_start >= since
    for p in group:
        short = _too_little_history(ctx, p, syms, out)
        deadline.start(p.scan.name)
        try:
            matches, errors = _scan_outcome(ctx, panel, p, syms, short, since_ok)
        except ScanTimeout as exc:
            matches, errors = [], {int(i): str(exc) for i in np.flatnonzero(~short)}
        for i, msg in errors.items():
            out[syms[i]].errors.append(msg)
        for m in matches:
            out[m.symbol].matches.append(m)
    return out


def _too_little_history(ctx: ChunkContext, p: _Prepared, syms: list[str], out: dict[str, _Found]) -> np.ndarray:
    """The rows with fewer bars than the scan's minimum (of any interval it uses); each gets its
    note, once."""
    short = np.zeros(ctx.n_rows, dtype=bool)
    for iv, need in p.minimum.items():
        if iv == p.scan.interval:
            counts = ctx.counts
        else:
            sub, sel = ctx.sub_context(iv)
            counts = np.zeros(ctx.n_rows, dtype=np.int64)
            counts[sel] = sub.counts
        for i in np.flatnonzero((counts < need) & ~short):
            out[syms[i]].notes.append(_too_short(p.scan.name, iv, need, int(counts[i])))
        short |= counts < need
    return short


def _scan_outcome(ctx: ChunkContext, panel: BarPanel, p: _Prepared, syms: list[str], short: np.ndarray,
                  since_ok) -> tuple[list[Match], dict[int, str]]:
    """The matches of one scan on the block, and its errors by row (rows with too little history
    get neither)."""
    scan = p.scan
    name = scan.name
    root = ctx.as_array(ctx.eval(p.compiled.root))
    errors = {i: f"scan {name!r}: {msg}" for i, msg in ctx.errors_of(p.keys).items() if not short[i]}
    blocked = short.copy()
    blocked[list(errors)] = True
    if blocked.all():
        return [], errors
    mask = root == 1.0
    mask &= ctx.has_history(p.minimum[scan.interval])
    mask[blocked] = False
    if since_ok is not None:
        gc = ctx.grid_col
        mask &= since_ok[np.clip(gc, 0, None)] & (gc >= 0)
    rr, cc = np.nonzero(mask)
    if not len(rr):
        return [], errors
    starts = panel.bar_start[ctx.grid_col[rr, cc]].tolist()
    keys = tuple(p.compiled.terms)
    columns = [ctx.values_at(node, rr, cc).tolist() for node in p.compiled.terms.values()]
    rows_l = rr.tolist()
    matches = [Match(name, syms[i], scan.interval, b, dict(zip(keys, vals)))
               for i, b, vals in zip(rows_l, starts, zip(*columns) if columns else [()] * len(rows_l))]
    return matches, errors


def evaluate_expression(
    formula: str | CompiledFormula,
    panels: Mapping[str, BarPanel] | BarPanel,
    interval: str | None = None,
) -> np.ndarray:
    """Values of a formula or numeric expression for every symbol and bar of ``panels[interval]``
    (n_symbols x n_bars; conditions as 1.0 true / 0.0 false / NaN unknown). No history check and
    no match filtering: for inspecting values. Raises FormulaError for a bad formula."""
    compiled = formula if isinstance(formula, CompiledFormula) else compile_expression(formula)
    if isinstance(panels, BarPanel):
        panels = {panels.interval: panels}
    if interval is None:
        interval = next(iter(panels))
    env = EvalEnv(panels)
    cache = env.cache(interval)
    for node in walk(compiled.root):
        if is_timeframe(node) and _shorter(node.args[0], interval):
            raise FormulaError(
                f'tf("{node.args[0]}", ...) cannot be used on {interval} bars: the interval must be at least as long',
                node.pos,
            )
    ctx = ChunkContext(cache, slice(0, cache.panel.n_symbols), env.deadline())
    return np.array(ctx.grid_values(compiled.root), dtype=np.float64, copy=True)
