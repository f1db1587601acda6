"""Array kernels of the formula language.

All series are 2-D float64 arrays (symbols x bars), NaN where there is no value. Conditions are
float64 arrays holding 1.0 (true), 0.0 (false) or NaN (unknown): three-valued (Kleene) logic, so
that a comparison with a missing operand stays unknown through ``not``.

Window kernels (shift, sma, rolling max/min, rolling any/all) run along axis 1 on the whole 2-D
block; a NaN inside a window makes that window's result NaN, and the result recovers once the NaN
has left the window. TA-Lib kernels run per row on each maximal run of finite values (see
``talib_rows``).
"""

from __future__ import annotations

import operator
import os
import threading
from typing import Callable, Sequence

import numpy as np

NAN = np.nan

# --------------------------------------------------------------------------------------------
# elementwise arithmetic and comparisons


def _no_infinities(ufunc: np.ufunc, a, b):
    """ufunc(a, b) where every result that is not finite is NaN: the language has no infinities,
    so an overflow (``close * 1e308``), a division by zero or ``0 ** -1`` gives no value, exactly
    like a missing operand."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = ufunc(a, b)
    if np.ndim(out) == 0:
        return float(out) if np.isfinite(out) else NAN
    out[~np.isfinite(out)] = NAN
    return out


def add(a, b):
    return _no_infinities(np.add, a, b)


def sub(a, b):
    return _no_infinities(np.subtract, a, b)


def mul(a, b):
    return _no_infinities(np.multiply, a, b)


def div(a, b):
    return _no_infinities(np.true_divide, a, b)


def power(a, e: float):
    return _no_infinities(np.power, a, e)


def neg(a):
    return -a


def absolute(a):
    return np.abs(a)


def minimum(a, b):
    return np.minimum(a, b)  # NaN-propagating


def maximum(a, b):
    return np.maximum(a, b)


ARITH: dict[str, Callable] = {"+": add, "-": sub, "*": mul, "/": div}

_CMP = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def compare(op: str, a, b):
    """Three-valued comparison: NaN if either side is NaN, else 1.0 / 0.0."""
    with np.errstate(invalid="ignore"):
        res = _CMP[op](a, b)
    if np.ndim(res) == 0:
        return NAN if bool(np.isnan(a) | np.isnan(b)) else float(bool(res))
    out = res.astype(np.float64)
    for side in (a, b):
        if np.ndim(side) == 0:
            if side != side:
                out[...] = NAN
        else:
            unknown = np.isnan(side)
            if unknown.any():
                out[np.broadcast_to(unknown, out.shape)] = NAN
    return out


def _kleene(a, b, plain: np.ufunc, lenient: np.ufunc, decisive: float):
    out = plain(a, b)  # NaN-propagating min / max
    if np.ndim(out) == 0:
        if out != out and lenient(a, b) == decisive:
            return decisive
        return float(out)
    unknown = np.flatnonzero(np.isnan(out))
    if unknown.size:
        # a decisive operand (false for 'and', true for 'or') wins over an unknown one
        fixed = lenient(np.broadcast_to(a, out.shape).ravel()[unknown], np.broadcast_to(b, out.shape).ravel()[unknown])
        flat = out.reshape(-1)
        flat[unknown] = np.where(fixed == decisive, decisive, NAN)
    return out


def kleene_and(a, b):
    """false if either is false; else unknown if either is unknown; else true."""
    return _kleene(a, b, np.minimum, np.fmin, 0.0)


def kleene_or(a, b):
    """true if either is true; else unknown if either is unknown; else false."""
    return _kleene(a, b, np.maximum, np.fmax, 1.0)


def kleene_not(a):
    return 1.0 - a


# --------------------------------------------------------------------------------------------
# window kernels along axis 1


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x[k]: value k bars back; NaN for the first k bars."""
    if k == 0:
        return x
    out = np.full_like(x, NAN)
    if k < x.shape[1]:
        out[:, k:] = x[:, :-k]
    return out


def _window_sums(values: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """Sums over trailing windows of n along axis 1, for windows ending at bars n-1 .. W-1."""
    cs = np.cumsum(values, axis=1)
    w = cs.shape[1]
    if out is None:
        out = np.empty((cs.shape[0], w - n + 1), dtype=cs.dtype)
    out[:, 0] = cs[:, n - 1]
    np.subtract(cs[:, n:], cs[:, : w - n], out=out[:, 1:])
    return out


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average (TA-Lib SMA): NaN unless all n values of the window are finite.

    Sums are taken relative to each row's first finite value, so that the cumulative sums stay
    small and the result agrees with TA-Lib to ~1e-12 relative.
    """
    rows, w = x.shape
    out = np.empty((rows, w))
    out[:, : min(n - 1, w)] = NAN
    if n > w or rows == 0:
        return out
    finite = np.isfinite(x)
    all_finite = bool(finite.all())
    if all_finite:
        ref = x[:, :1].copy()
    else:
        first = finite.argmax(axis=1)
        ref = x[np.arange(rows), first][:, None]
        ref[~np.isfinite(ref)] = 0.0
    centred = x - ref
    if not all_finite:
        centred[~finite] = 0.0
    res = _window_sums(centred, n, out=out[:, n - 1 :])
    res /= n
    res += ref
    if not all_finite:
        counts = _window_sums(finite.view(np.int8).astype(np.int32), n)
        res[counts != n] = NAN
    return out


def _rolling_extreme(x: np.ndarray, n: int, acc: np.ufunc) -> np.ndarray:
    """van Herk / Gil-Werman rolling max/min: 3 comparisons per element, any window length."""
    rows, w = x.shape
    out = np.full((rows, w), NAN)
    if n > w or rows == 0:
        return out
    if n == 1:
        return x.copy()
    nb = -(-w // n)
    padded = np.full((rows, nb * n), NAN)
    padded[:, :w] = x
    blocks = padded.reshape(rows, nb, n)
    prefix = acc.accumulate(blocks, axis=2).reshape(rows, nb * n)
    suffix = acc.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1].reshape(rows, nb * n)
    out[:, n - 1 :] = acc(suffix[:, : w - n + 1], prefix[:, n - 1 : w])
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling_extreme(x, n, np.maximum)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling_extreme(x, n, np.minimum)


def _rolling_counts(mask: np.ndarray, n: int) -> np.ndarray:
    """Count of True in the trailing window of n; windows not yet full count as -1."""
    rows, w = mask.shape
    out = np.full((rows, w), -1, dtype=np.int64)
    if n <= w:
        out[:, n - 1 :] = _window_sums(mask.astype(np.int64), n)
    return out


def rolling_any(c: np.ndarray, n: int) -> np.ndarray:
    """True if the condition was true on any of the last n bars; else unknown if any of them
    (or a bar before the start of the data) is unknown; else false."""
    true_n = _rolling_counts(c == 1.0, n)
    unk_n = _rolling_counts(np.isnan(c), n)
    out = np.where(true_n > 0, 1.0, np.where((unk_n != 0), NAN, 0.0))
    # windows that are not full: true if a true is already inside, else unknown
    w = c.shape[1]
    if n > 1:
        head = min(n - 1, w)
        seen = np.maximum.accumulate(c[:, :head] == 1.0, axis=1)  # NaN == 1.0 is False
        out[:, :head] = np.where(seen, 1.0, NAN)
    return out


def rolling_all(c: np.ndarray, n: int) -> np.ndarray:
    """False if the condition was false on any of the last n bars; else unknown if any of them
    (or a bar before the start of the data) is unknown; else true."""
    false_n = _rolling_counts(c == 0.0, n)
    unk_n = _rolling_counts(np.isnan(c), n)
    out = np.where(false_n > 0, 0.0, np.where((unk_n != 0), NAN, 1.0))
    w = c.shape[1]
    if n > 1:
        head = min(n - 1, w)
        seen = np.maximum.accumulate(c[:, :head] == 0.0, axis=1)
        out[:, :head] = np.where(seen, 0.0, NAN)
    return out


def bars_since(c: np.ndarray) -> np.ndarray:
    """Bars since the condition was last true (0 on a bar where it is true); NaN if never."""
    rows, w = c.shape
    idx = np.arange(w)
    last = np.where(c == 1.0, idx, -1)
    np.maximum.accumulate(last, axis=1, out=last)
    out = (idx - last).astype(np.float64)
    out[last < 0] = NAN
    return out


def change(x: np.ndarray, n: int) -> np.ndarray:
    return sub(x, shift(x, n))


def pct_change(x: np.ndarray, n: int) -> np.ndarray:
    """Percent change over n bars: (x - x[n]) / x[n] * 100, NaN when x[n] is 0."""
    prev = shift(x, n)
    return mul(div(sub(x, prev), prev), 100.0)


# --------------------------------------------------------------------------------------------
# TA-Lib per row


def finite_runs(mask_row: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each maximal run of True."""
    d = np.diff(np.concatenate(([0], mask_row.view(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), stops.tolist()))


def talib_rows(
    fn: Callable,
    inputs: Sequence[np.ndarray],
    params: Sequence[object],
    n_out: int,
    on_error: Callable[[int, BaseException], None],
    tick: Callable[[], None] | None = None,
) -> list[np.ndarray]:
    """Call a TA-Lib function row by row on each maximal run of bars where all inputs are finite.

    Each run is computed as if it were the whole series (TA-Lib's own lookback and seeding apply
    at the run's start); bars outside runs are NaN. This is how a gap (a NaN inside a symbol's
    series) is handled: the indicator restarts after it instead of being poisoned for the rest of
    the series. An exception from TA-Lib for one row is reported through ``on_error`` and leaves
    that row NaN.
    """
    inputs = [np.ascontiguousarray(a, dtype=np.float64) for a in inputs]
    rows, w = inputs[0].shape
    outs = [np.full((rows, w), NAN) for _ in range(n_out)]
    if rows == 0 or w == 0:
        return outs
    finite = np.isfinite(inputs[0])
    for a in inputs[1:]:
        finite &= np.isfinite(a)
    if finite.all():
        spans = [[(0, w)]] * rows
    else:
        counts = finite.sum(axis=1)
        first = finite.argmax(axis=1)
        last = w - 1 - finite[:, ::-1].argmax(axis=1)
        contiguous = (counts == (last - first + 1)).tolist()
        spans = [
            [] if c == 0 else [(f, l + 1)] if ok else finite_runs(finite[r])
            for r, (c, f, l, ok) in enumerate(zip(counts.tolist(), first.tolist(), last.tolist(), contiguous))
        ]
    single = len(inputs) == 1
    x0 = inputs[0]
    o0 = outs[0]
    for r in range(rows):
        if tick is not None and not r & 31:
            tick()
        for a, b in spans[r]:
            try:
                if single:
                    res = fn(x0[r, a:b], *params)
                else:
                    res = fn(*[inp[r, a:b] for inp in inputs], *params)
            except Exception as exc:  # one row's failure never affects the others
                on_error(r, exc)
                for o in outs:
                    o[r] = NAN
                break
            if n_out == 1:
                o0[r, a:b] = res
            else:
                for o, v in zip(outs, res):
                    o[r, a:b] = v
    return outs


# --------------------------------------------------------------------------------------------
# cross-sectional kernels: along axis 0 (across symbols), one bar at a time, NaN excluded.
# Each works through the bars in chunks and calls ``tick`` (the caller's deadline check) before
# every chunk, so that a cross section that takes too long stops within its time limit.

Tick = Callable[[], None] | None


def _sort_rows(v: np.ndarray):
    """Sort each row of v (bars x symbols; NaN sorts last). Returns the argsort order and, for
    each sorted position, the first and last sorted position of its run of equal values."""
    rows, n = v.shape
    order = np.argsort(v, axis=1)
    s = np.take_along_axis(v, order, axis=1)
    pos = np.broadcast_to(np.arange(n, dtype=np.float64), v.shape)
    ties = s[:, 1:] == s[:, :-1]
    tie_rows = np.flatnonzero(ties.any(axis=1))
    if not tie_rows.size:
        return order, pos, pos
    start, end = pos.copy(), pos.copy()
    t = ties[tie_rows]
    p = pos[: len(tie_rows)]
    new = np.ones(t.shape[:1] + (n,), dtype=bool)
    new[:, 1:] = ~t
    start[tie_rows] = np.maximum.accumulate(np.where(new, p, 0.0), axis=1)
    end_flag = np.ones(new.shape, dtype=bool)
    end_flag[:, :-1] = new[:, 1:]
    end[tie_rows] = np.minimum.accumulate(np.where(end_flag, p, n - 1.0)[:, ::-1], axis=1)[:, ::-1]
    return order, start, end


def _bars_by_symbols(x: np.ndarray, negate: bool = False) -> np.ndarray:
    v = np.empty((x.shape[1], x.shape[0]))
    v[...] = x.T
    if negate:
        np.negative(v, out=v)
    return v


#: Cross sections are computed in chunks of bars of about this many cells (symbols x bars).
CHUNK_CELLS = 1 << 16
#: Cross sections at least this large are split over two threads: numpy's sort and fancy
#: indexing release the GIL, so the second core does half of the chunks.
PARALLEL_MIN_CELLS = 1 << 18


def _by_column_chunks(work: Callable[[int, int], None], shape: tuple[int, int], tick: Tick) -> None:
    """work(lo, hi) on chunks of the columns [0, shape[1]), calling tick() before each chunk; in
    two threads when there are two cores and enough work."""
    rows, cols = shape
    step = max(1, CHUNK_CELLS // max(rows, 1))
    chunks = [(lo, min(lo + step, cols)) for lo in range(0, cols, step)]

    def run(part: list[tuple[int, int]]) -> None:
        for lo, hi in part:
            if tick is not None:
                tick()
            work(lo, hi)

    if rows * cols < PARALLEL_MIN_CELLS or len(chunks) < 2 or (os.cpu_count() or 1) < 2:
        run(chunks)
        return
    mid = len(chunks) // 2
    failure: list[BaseException] = []

    def other() -> None:
        try:
            run(chunks[mid:])
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)

    t = threading.Thread(target=other, name="formula-cross-section", daemon=True)
    t.start()
    try:
        run(chunks[:mid])
    finally:
        t.join()
    if failure:
        raise failure[0]


def _cross_rank(x: np.ndarray, descending: bool, average: bool, tick: Tick) -> np.ndarray:
    """Per bar (column), the 0-based sorted position of each symbol's value, ties resolved to the
    first position of their run (or the mean of first and last with ``average``). NaN sorts last."""
    out = np.empty(x.shape)

    def work(lo: int, hi: int) -> None:
        order, start, end = _sort_rows(_bars_by_symbols(x[:, lo:hi], negate=descending))
        vals = (start + end) / 2.0 if average else start
        dst = out[:, lo:hi]
        dst[order, np.arange(hi - lo)[:, None]] = vals

    _by_column_chunks(work, x.shape, tick)
    return out


def cs_rank(x: np.ndarray, tick: Tick = None) -> np.ndarray:
    """Rank across symbols at each bar, 1 = highest; ties share the best rank (1, 2, 2, 4)."""
    if x.size == 0:
        return x.copy()
    out = _cross_rank(x, descending=True, average=False, tick=tick)
    out += 1.0
    out[np.isnan(x)] = NAN
    return out


def cs_percentile(x: np.ndarray, tick: Tick = None) -> np.ndarray:
    """Percentile rank across symbols at each bar: 100 * (r - 1) / (N - 1) with r the ascending
    rank (ties averaged) and N the count of valid values; lowest 0, highest 100; NaN if N < 2."""
    if x.size == 0:
        return x.copy()
    nan = np.isnan(x)
    valid = (~nan).sum(axis=0)
    out = _cross_rank(x, descending=False, average=True, tick=tick)
    with np.errstate(divide="ignore", invalid="ignore"):
        out *= 100.0 / (valid - 1.0)
    out[nan] = NAN
    out[:, valid < 2] = NAN
    return out


def cs_top_k(x: np.ndarray, k: int, tick: Tick = None) -> tuple[np.ndarray, np.ndarray]:
    """rank(x) <= k at each bar without ranking everything: rank(x) = 1 + #(values > x), so
    rank(x) <= k exactly when x >= the k-th largest value of the bar (np.partition, O(n) per bar;
    with fewer than k values every value qualifies). Returns the condition (1.0 / 0.0, NaN where
    x is NaN) and the bars x symbols array of -x with NaN as +inf (for ``cs_rank_at``)."""
    s, g = x.shape
    neg = np.empty((g, s))
    kth = np.full(g, np.inf)

    def work(lo: int, hi: int) -> None:
        v = neg[lo:hi]
        v[...] = x[:, lo:hi].T
        np.negative(v, out=v)
        v[np.isnan(v)] = np.inf
        if 1 <= k <= s:
            kth[lo:hi] = np.partition(v, k - 1, axis=1)[:, k - 1]

    _by_column_chunks(work, x.shape, tick)
    if k < 1:
        out = np.zeros(x.shape)
    else:
        with np.errstate(invalid="ignore"):
            out = (x >= -kth).astype(np.float64)
    out[np.isnan(x)] = NAN
    return out, neg


def cs_rank_at(neg: np.ndarray, rows: np.ndarray, cols: np.ndarray, x: np.ndarray, tick: Tick = None) -> np.ndarray:
    """rank values (as ``cs_rank``) only at the cells (rows[i], cols[i]) whose values are x[i],
    from the bars x symbols array of ``cs_top_k``: 1 + the number of values greater than x."""
    m = len(rows)
    out = np.full(m, NAN)
    step = max(1, (1 << 20) // max(neg.shape[1], 1))  # about 1M comparisons per batch
    for lo in range(0, m, step):
        if tick is not None:
            tick()
        hi = min(lo + step, m)
        with np.errstate(invalid="ignore"):
            greater = np.count_nonzero(neg[cols[lo:hi]] < -x[lo:hi, None], axis=1)
        out[lo:hi] = greater + 1.0
    out[np.isnan(x)] = NAN
    return out


def _zscores(x: np.ndarray) -> np.ndarray:
    """zscore of each column. Computed on values brought into [-1, 1] twice (divided by the
    column's largest magnitude, then the deviations by the largest deviation), so that neither
    the mean nor the squared deviations can overflow or underflow: zscore(k * x) is zscore(x)
    within rounding for any k > 0 whose product is finite."""
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = x / np.abs(np.where(finite, x, 0.0)).max(axis=0)
        mean = np.where(finite, u, 0.0).sum(axis=0) / n
        d = np.where(finite, u - mean, 0.0)
        d /= np.abs(d).max(axis=0)  # all deviations 0 (std 0): 0 / 0, NaN
        out = d / np.sqrt((d * d).sum(axis=0) / n)
    out[~finite] = NAN
    return out


def cs_zscore(x: np.ndarray, tick: Tick = None) -> np.ndarray:
    """(x - mean) / std across symbols at each bar, population std (ddof=0); NaN if std is 0."""
    out = np.empty(x.shape)

    def work(lo: int, hi: int) -> None:
        out[:, lo:hi] = _zscores(x[:, lo:hi])

    _by_column_chunks(work, x.shape, tick)
    return out


# --------------------------------------------------------------------------------------------
# time-frame alignment


def last_completed_index(done: np.ndarray) -> np.ndarray:
    """For each row and bar j: the largest i <= j with done[row, i], else -1."""
    w = done.shape[1]
    idx = np.where(done, np.arange(w), -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return idx


def align(values: np.ndarray, last_done: np.ndarray, source_col: np.ndarray) -> np.ndarray:
    """values (rows x bars of the higher interval) onto the lower interval's bars.

    source_col[t] is the latest higher-interval bar allowed for lower bar t (-1 for none);
    last_done maps it to the latest completed bar at or before it, per row.
    """
    rows = values.shape[0]
    t_n = source_col.shape[0]
    out = np.full((rows, t_n), NAN)
    ok_t = source_col >= 0
    if rows == 0 or not ok_t.any():
        return out
    src = last_done[:, source_col[ok_t]]
    got = src >= 0
    vals = np.take_along_axis(values, np.where(got, src, 0), axis=1)
    vals[~got] = NAN
    out[:, ok_t] = vals
    return out
