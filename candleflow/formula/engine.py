"""Running scans: many formulas over many symbols, with progress, cancellation and time limits."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..market.intervals import INTERVALS, check_interval
from .compiler import CompiledFormula, compile_expression, compile_formula, is_timeframe
from .errors import FormulaError, ScanTimeout
from .evaluator import Cancelled, ChunkContext, Clock, EvalEnv
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
                if INTERVALS.index(iv) < INTERVALS.index(scan.interval):
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
    log = logger if logger is not None else _LOG
    prepared = _prepare(list(scans), panels)
    intervals: list[str] = []
    for p in prepared:
        if p.scan.interval not in intervals:
            intervals.append(p.scan.interval)
    if len(intervals) == 1:
        symbols = list(panels[intervals[0]].symbols)
    else:
        symbols = sorted({s for iv in intervals for s in panels[iv].symbols})
    total = len(symbols)
    results = {s: SymbolResult(s) for s in symbols}
    errors: dict[str, list[str]] = {}
    env = EvalEnv(panels, cancel=cancel, time_limit_s=time_limit_s)
    groups = {iv: [p for p in prepared if p.scan.interval == iv] for iv in intervals}
    step = env.chunk_symbols
    done = 0
    last_reported = -1

    def report(n: int) -> None:
        nonlocal last_reported
        if progress is None or n == last_reported:
            return
        last_reported = n
        try:
            progress(n, total)
        except Exception:  # a broken callback must not break the scan
            log.exception("progress callback failed")

    try:
        for start in range(0, total, step):
            env.check_cancel()
            chunk = symbols[start : start + step]
            t0 = time.perf_counter()
            cs0 = env.cross_section_seconds
            found: dict[str, _Found] = {}
            for iv, group in groups.items():
                _run_block(env, panels[iv], group, chunk, since, found, log)
            elapsed = time.perf_counter() - t0 - (env.cross_section_seconds - cs0)
            share = max(elapsed, 0.0) / len(chunk)
            for s in chunk:
                f = found.get(s)
                r = results[s]
                if f is None:
                    r.seconds += share
                    continue
                r.matches.extend(f.matches)
                r.notes.extend(f.notes)
                r.seconds += f.seconds if f.seconds else share
                if f.errors:
                    errors.setdefault(s, []).extend(f.errors)
            done = start + len(chunk)
            report(done)
    except Cancelled:
        for s in symbols[done:]:
            results[s].matches = []
            results[s].notes = []
            errors[s] = ["cancelled"]
        log.warning("scan cancelled after %d of %d symbols", done, total)
    if total and env.cross_section_seconds:
        share = env.cross_section_seconds / total
        for r in results.values():
            r.seconds += share
    for s in symbols[:done]:
        if results[s].notes:
            log.info("symbol %s: %s", s, "; ".join(results[s].notes))
    for s, errs in errors.items():
        results[s].error = "; ".join(errs)
        if errs != ["cancelled"]:
            log.warning("symbol %s: %s", s, results[s].error)
    report(total)
    return [results[s] for s in symbols]


def _run_block(env: EvalEnv, panel: BarPanel, group: list[_Prepared], chunk: list[str], since, found, log) -> None:
    """Evaluate the scans of one interval for a block of symbols; on an unexpected error of the
    block, evaluate its symbols one by one (against the same deadlines)."""
    rows = panel.rows_of(chunk)
    have = rows >= 0
    for i in np.flatnonzero(~have):
        notes = [_too_short(p.scan.name, p.scan.interval, p.minimum[p.scan.interval], 0) for p in group]
        _add(found, chunk[i], _Found(notes=notes))
    sel = np.flatnonzero(have)
    if not len(sel):
        return
    syms = [chunk[i] for i in sel]
    r = rows[sel]
    if r[-1] - r[0] == len(r) - 1 and (np.diff(r) == 1).all():
        row_spec = slice(int(r[0]), int(r[-1]) + 1)
    else:
        row_spec = r
    clock = env.clock()
    try:
        out = _evaluate_rows(env, panel, row_spec, syms, group, since, clock)
    except Cancelled:
        raise
    except Exception:
        log.exception("block of %d symbols failed; evaluating them one by one", len(syms))
        out = {}
        for j, s in enumerate(syms):
            env.check_cancel()
            t0 = time.perf_counter()
            row = int(r[j])
            try:
                one = _evaluate_rows(env, panel, slice(row, row + 1), [s], group, since, clock)[s]
            except Cancelled:
                raise
            except Exception as exc2:
                one = _Found(errors=[f"{type(exc2).__name__}: {exc2}"])
            one.seconds = time.perf_counter() - t0
            _add(found, s, one)
        return
    if not found:
        found.update(out)
        return
    for s, f in out.items():
        _add(found, s, f)


def _add(found: dict[str, _Found], s: str, f: _Found) -> None:
    got = found.get(s)
    if got is None:
        found[s] = f
    else:
        got.merge(f)


def _evaluate_rows(env, panel, rows, syms, group, since, clock: Clock) -> dict[str, _Found]:
    """Matches, notes (too little history) and errors of the scans of ``group`` for the symbols
    ``syms`` (panel rows ``rows``). A scan that runs out of time gives its symbols the timeout's
    message and no matches; the other scans go on."""
    ctx = ChunkContext(env.store(panel.interval), rows, clock)
    out = {s: _Found() for s in syms}
    since_ok = None if since is None else panel.bar_start >= since
    for p in group:
        short = _too_little_history(ctx, p, syms, out)
        clock.start(p.scan.name)
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
    store = env.store(interval)
    for node in walk(compiled.root):
        if is_timeframe(node) and INTERVALS.index(node.args[0]) < INTERVALS.index(interval):
            raise FormulaError(
                f'tf("{node.args[0]}", ...) cannot be used on {interval} bars: the interval must be at least as long',
                node.pos,
            )
    ctx = ChunkContext(store, slice(0, store.panel.n_symbols), env.clock())
    return np.array(ctx.grid_values(compiled.root), dtype=np.float64, copy=True)
