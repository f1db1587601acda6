"""Scan formulas: a small, safe expression language over OHLCV bars, and the running of scans.

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

The language
============

Its syntax, missing-value rules, history rule and limits are documented once, in
``docs/formulas.md``; the functions, generated from the registry (``functions.py``, whose
indicator functions come from ``candleflow.market.indicator_registry``), in
``docs/formula-functions.md`` (``python -m candleflow.formula.reference``).

Running scans
=============

Modules: ``parser`` (text -> node tree), ``compiler`` (history, terms), ``scan_runner`` (scans over
blocks of symbols: ``evaluate_scans``), ``block_evaluator`` (node trees on one block: layouts, the
``PanelCache`` of cross sections, the ``Deadline`` of a block), ``functions`` (the registry).

``evaluate_scans`` compiles every formula first (a FormulaError is raised before any work), then
evaluates the scans in blocks of 128 symbols as 2-D arrays, sharing sub-expressions between the
formulas of the scan set (one cache per block, keyed by canonical text), calling TA-Lib per symbol
for the indicator functions except sma, a 2-D cumulative sum (``functions.BLOCK_KERNELS``); highest/lowest a 2-D van Herk /
Gil-Werman rolling extreme. Cross sections are computed once per evaluation over the whole panel
(their argument block by block), sorting the two halves of the bars in two threads (numpy releases
the GIL); ``rank(x) <= K`` (and <, >, >=, either side) is computed as ``x >= the K-th largest
value of the bar`` with a partition instead of a full sort, and the rank values reported in
matches are counted at the matched cells only.

Everything else is per symbol and returned, never raised: not enough history (a note in
``SymbolResult.notes``, see History), and in ``SymbolResult.error`` a TA-Lib failure, a timeout,
and "cancelled" for the symbols not evaluated when ``cancel`` was set (checked between blocks).
A block (or a block of a cross section's argument) that raises is evaluated again one symbol at a
time (``candleflow.isolation``), so that only the symbol behind the error fails.

Time limit: each scan gets ``time_limit_s`` (default 60 s, ``SCAN_TIME_LIMIT_S``, which the
pipeline passes) of wall-clock time per block, for all it computes there: its values and the cross
sections it is the first to need (their argument over the whole panel, and the kernel, which
checks the deadline between chunks of bars). Checked between steps (nodes, every 32 rows of
TA-Lib, every chunk of a cross section). Running out raises ``ScanTimeout`` inside the evaluation,
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
from .scan_runner import Match, Scan, SymbolResult, evaluate_expression, evaluate_scans, required_history
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
