"""Scan formulas: a small, safe expression language over OHLCV bars, and its evaluation engine.

A scan is a named formula evaluated on the bars of one interval for every symbol of a panel; it
*matches* a symbol on each bar where the formula is true. Formulas are user input and are treated
as such: they are parsed with ``ast.parse(mode="eval")`` (which builds a syntax tree and runs
nothing), converted through an allow-list into the language's own node types, and evaluated by
numpy / TA-Lib code. No ``eval``, ``exec`` or ``compile`` of formula text, ever.

Public API
==========

``compile_formula(text) -> CompiledFormula``            (raises FormulaError; must be a condition)
``compile_expression(text) -> CompiledFormula``         (numbers allowed too, e.g. ``sma(close, 5)``)
``CompiledFormula``: ``.text``, ``.root``, ``.key`` (canonical text), ``.terms`` (dict canonical
    text -> node of each series / function value the formula uses, in order of appearance),
    ``.intervals`` (set of intervals named by ``tf``), ``.minimum_bars(interval) -> dict[str, int]``
    (bars a symbol must have), ``.history_bars(interval) -> dict[str, int]`` (bars to load)
``BarPanel.from_candles(frame, interval) -> BarPanel``   (see ``panel.py``)
``Scan(name, formula, interval="1d")``, ``Match(scan, symbol, interval, bar_start, values)``,
``SymbolResult(symbol, matches, error, seconds, notes)``  (``error``: real failures only, or None;
    ``notes``: list of remarks such as too little history)
``evaluate_scans(scans, panels, *, since=None, progress=None, cancel=None, time_limit_s=60.0,
    logger=None) -> list[SymbolResult]``  (``time_limit_s``: ``limits.SCAN_TIME_LIMIT_S``)
``required_history(scans) -> dict[str, int]``   (bars to load per interval: max of history_bars)
``evaluate_expression(formula, panels, interval=None) -> ndarray``  (values for inspection)
``FormulaError(ValueError)`` with ``.message`` and ``.position`` (0-based character offset; the
    text ends with "at column N")
``ScanTimeout(FormulaError)`` with ``.scan`` and ``.limit_s``: a scan ran past its time limit
    (the text is the message alone: "scan 'slow' exceeded its time limit of 2 s")

Syntax
======

* Numbers: ``30``, ``1.5``, ``1e6``. Arithmetic ``+ - * /``, unary ``-``, parentheses.
  ``x ** e`` only with a number literal ``e`` between -10 and 10. There are no infinities: every
  arithmetic result that is not a finite number is NaN (see "Missing values").
* Comparisons ``< <= > >= == !=``. Chains are allowed and mean what they mean in Python:
  ``20 < rsi(14) < 30`` is ``20 < rsi(14) and rsi(14) < 30``.
* ``and``, ``or``, ``not`` on conditions. Arithmetic on conditions and ``and``/``or`` on numbers
  are errors (no implicit conversion).
* Series: ``open high low close volume vwap`` of the scan's interval. ``vwap`` is the session VWAP:
  cumulative typical price ((h+l+c)/3) x volume over cumulative volume since the session's first
  bar (sessions: the panel's ``session_starts`` or else UTC days); on daily bars, the bar's
  typical price.
* Offsets: ``x[k]`` is x k bars back (the symbol's own bars), ``k`` a whole-number literal,
  0 <= k <= 1000. Any series or condition can be offset: ``close[1]``, ``sma(close, 20)[5]``.
* Other intervals: ``tf("1d", x)`` evaluates ``x`` on daily bars (any interval name ``1m 5m 15m 30m
  1h 1d``, at least as long as the scan's; strings appear nowhere else in the language). Inside a
  scan on a shorter interval it is the value of the *last completed* bar of that interval that lies
  wholly before the current bar: for ``1d``, the last completed session strictly before the current
  bar's session; for intraday, the last completed bar whose end (start + length) is <= the current
  bar's start. No look-ahead: a daily value becomes visible on the first bar of the next session.
  (A daily bar with start d is taken to be the current bar's session when the current bar starts
  less than 24 h after d.) ``tf`` with the scan's own interval is just ``x``.
* Keyword arguments are allowed for declared parameters: ``macd(close, fast=8, slow=21)``.

Functions (indicators equal TA-Lib's; windows and periods are whole-number literals <= 5000)
=========

===========================================  =====================================================
``sma(x, n)``                                simple moving average (TA-Lib SMA)
``ema(x, n)``                                TA-Lib EMA (seeded with the SMA of the first n values)
``rsi(n=14)`` / ``rsi(x, n)``                TA-Lib RSI (Wilder); ``rsi(14)`` = ``rsi(close, 14)``
``macd(x, fast=12, slow=26, signal=9)``      MACD line (TA-Lib MACD); fast < slow
``macd_signal(...)``, ``macd_hist(...)``     its signal line and histogram (same parameters)
``bb_upper/bb_middle/bb_lower(x, n=20, k=2)``  TA-Lib BBANDS, population std, 0 <= k <= 10
``atr(n=14)``                                TA-Lib ATR of high/low/close (Wilder)
``highest(x, n)``, ``lowest(x, n)``          max / min of the last n bars, this bar included
``change(x, n=1)``                           x - x[n]
``pct_change(x, n=1)``                       (x - x[n]) / x[n] * 100, a percentage
``crossover(a, b)``                          a > b and a[1] <= b[1]
``crossunder(a, b)``                         a < b and a[1] >= b[1]
``bars_since(cond)``                         bars since cond was last true (0 if true now);
                                             NaN if never true in the loaded history
``any_of(cond, n)``, ``all_of(cond, n)``     cond true on any / all of the last n bars
``abs(x)``, ``min(a, b)``, ``max(a, b)``     elementwise
``rank(x)``                                  rank across the panel's symbols on this bar,
                                             1 = highest, ties share the best rank (1, 2, 2, 4)
``percentile(x)``                            100 * (r - 1) / (N - 1), r = ascending rank with ties
                                             averaged, N = number of values; NaN if N < 2
``zscore(x)``                                (x - mean) / std across symbols, population std;
                                             NaN if the std is 0; computed on scaled values, so
                                             zscore(k * x) = zscore(x) for any k > 0 (no
                                             overflow or underflow of the squares)
``tf(interval, x)``                          see above
===========================================  =====================================================

Crossover ties: ``crossover(a, b)`` is exactly ``a > b and a[1] <= b[1]``: touching (a == b)
on the previous bar then moving above counts as a cross; touching now does not. ``crossunder`` is
the mirror image. Cross-sectional functions exclude NaN values (symbols without a bar or without
enough history at that bar) from the cross-section; the universe is every symbol of the panel,
not only the ones in one block.

Missing values (NaN) and three-valued logic
============================================

Arithmetic with a NaN operand gives NaN, and so does arithmetic whose result is not finite, for
every operator alike (``+ - * / **``, and ``change``/``pct_change``, which are defined by them): an
overflow (``close * 1e308``), a division by zero, ``0 ** -1``, a negative number to a fractional
power. Such a value is missing, never an infinity that would compare as a number: ``close * 1e308
> 0`` is unknown. (Underflow rounds towards 0 as floating point does.) A comparison with a NaN
operand is *unknown* (not false), and conditions use Kleene logic: ``not unknown`` is unknown;
``a and b`` is false if either is false, else unknown if either is unknown; ``a or b`` is true if
either is true, else unknown if either is unknown. A scan matches only where the formula is
*true*: a NaN operand therefore never produces a match, even under ``not``.
``crossover``/``crossunder`` follow the same rules; ``any_of(c, n)`` is true if c was true on any
of the last n bars, else unknown if any of them is unknown (bars before the symbol's first bar
count as unknown); ``all_of`` mirrors it.
``evaluate_expression`` reports conditions as 1.0 / 0.0 / NaN.

Windows (sma, highest, lowest, any_of, all_of, bb) give NaN while any value in the window is NaN
and recover once it has left the window. TA-Lib indicators (ema, rsi, macd, bb, atr) are computed
per symbol on each maximal run of finite input values, so a NaN inside a computed series restarts
the indicator after it instead of poisoning the rest of the series.

Gaps: all bar counting (offsets, windows, indicators) uses the symbol's *own* bars. A symbol that
has no bar at some time of the panel's grid (a halt, a minute without trades) is not given a NaN
there: its bars are evaluated as one contiguous series and the results are put back on the grid.

History
=======

The history each formula needs is inferred from it (``minimum_bars``); the loader fetches that
plus a 250-bar warm-up for smoothed functions (``history_bars``, and ``required_history`` across
a scan set); a symbol with fewer than ``minimum_bars`` bars gives no match with the reason
"needs N bars, has M"; a symbol with the minimum but less than the warm-up is evaluated on what it
has (TA-Lib's values from its first computable bar), so its smoothed values may differ slightly
from a full-history computation.

``minimum_bars(interval)`` is, per interval, how many bars one value at the latest bar needs:
along every path from the formula's root to a series, 1 + the sum of the lookbacks (TA-Lib's:
sma/bb/highest/lowest/any_of/all_of n-1, ema n-1, rsi n, atr n, macd slow-1+signal-1,
change/pct_change n, crossover 1) and offsets; the maximum over paths. ``history_bars(interval)``
is the same plus a warm-up of 250 bars once if the path goes through a smoothed function (ema,
rsi, macd*, atr). Inside ``tf`` the outer lookback is converted to bars of the other interval (a
daily session counted as 6.5 h) and one bar is added for the skipped current bar. Examples (daily
scan, minimum / to load): ``close > sma(close, 50)`` 50 / 50; ``rsi(14) < 30`` 15 / 265;
``macd_hist(close) > 0`` 34 / 284. A formula may need at most 20,000 bars to load.

A symbol whose panel has fewer bars than the minimum (of any interval the formula uses) gets no
matches from that scan and the note "scan 'NAME': not enough 1d history: needs N bars, has M" in
``SymbolResult.notes`` (logged at INFO); this is not an error. A bar matches only once the symbol
has at least the minimum number of its own bars up to and including it.

Limits
======

Formula length 2,000 characters; nesting depth 32 (brackets and sub-expressions); 256 syntax
elements; windows 5,000 bars; offsets 1,000 bars; exponents |e| <= 10; ASCII only. Everything
outside the allow-list is an error with its position: attribute access, subscripts other than
``x[k]``, lambdas, comprehensions, unknown names (with the closest known names suggested), calls
of anything but the language's functions (``open(...)``: open is a series), keyword arguments
that are not declared, strings other than tf's interval, ``*``/``**`` arguments, ``:=``,
f-strings, conditional expressions, ``True``/``None``, bitwise operators and more.

Engine
======

``evaluate_scans`` compiles every formula first (a FormulaError is raised before any work), then
evaluates the scans in blocks of 128 symbols as 2-D arrays, sharing sub-expressions between the
formulas of the scan set (one cache per block, keyed by canonical text), calling TA-Lib per symbol
only for ema/rsi/macd/bbands/atr; sma is a 2-D cumulative sum, highest/lowest a 2-D van Herk /
Gil-Werman rolling extreme. Cross sections are computed once per evaluation over the whole panel
(their argument block by block), sorting the two halves of the bars in two threads (numpy releases
the GIL); ``rank(x) <= K`` (and <, >, >=, either side) is computed as ``x >= the K-th largest
value of the bar`` with a partition instead of a full sort, and the rank values reported in
matches are counted at the matched cells only.

Everything else is per symbol and returned, never raised: not enough history (a note in
``SymbolResult.notes``, see History), and in ``SymbolResult.error`` a TA-Lib failure, a timeout,
and "cancelled" for the symbols not evaluated when ``cancel`` was set (checked between blocks).

Time limit: each scan gets ``time_limit_s`` (default 60 s, ``SCAN_TIME_LIMIT_S``, which the
pipeline passes) of wall-clock time per block, for all it computes there: its values and the cross
sections it is the first to need (their argument over the whole panel, and the kernel, which
checks the deadline between chunks of bars). Checked between steps (nodes, every 32 rows of
TA-Lib, every chunk of a cross section). Running out raises ``ScanTimeout`` inside the engine,
which fails that scan for every symbol of the block with its message, "scan 'slow' exceeded its
time limit of 2 s". A timed-out block is not redone symbol by symbol (that would cost the limit
once per symbol): its symbols fail, the block's other scans and the other blocks are kept, and a
cross section that ran out is not computed again (later blocks needing it fail at once).

``progress(done, total)`` is called after every block and finally with ``(total, total)``. A scan
matches on incomplete (still open) bars of its own interval too; only ``tf`` insists on completed
bars.

Benchmark: ``candleflow.formula.benchmark.run_scan_workload()`` (2,500 symbols x 1,000 daily bars,
3 formulas, all bars).
"""

from .compiler import CompiledFormula, compile_expression, compile_formula
from .engine import Match, Scan, SymbolResult, evaluate_expression, evaluate_scans, required_history
from .errors import FormulaError, ScanTimeout
from .panel import BarPanel

__all__ = [
    "BarPanel",
    "CompiledFormula",
    "FormulaError",
    "Match",
    "Scan",
    "ScanTimeout",
    "SymbolResult",
    "compile_expression",
    "compile_formula",
    "evaluate_expression",
    "evaluate_scans",
    "required_history",
]
