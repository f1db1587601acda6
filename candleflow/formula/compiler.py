"""Compiled formulas: the node tree plus what the scan runner needs to know up front (the terms to
report with a match, the intervals referenced, the history required)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..market.intervals import INTRADAY_SECONDS, check_interval
from .errors import FormulaError
from .functions import CROSS_SECTION, TIMEFRAME
from .limits import MAX_HISTORY_BARS, WARMUP_BARS, session_seconds
from .nodes import COND, NUMBER, Call, Field, Node, Offset, walk
from .parser import parse

def _seconds(interval: str) -> int:
    return INTRADAY_SECONDS.get(interval) or session_seconds()


def bars_spanned(n: int, source: str | None, target: str) -> int:
    """How many ``target`` bars ``n`` bars of ``source`` can span (rounded up)."""
    if n <= 0 or source is None:
        return 0
    if source == target:
        return n
    return math.ceil(n * _seconds(source) / _seconds(target))


def is_timeframe(node: Node) -> bool:
    return isinstance(node, Call) and node.spec.category == TIMEFRAME


def wrap_timeframes(node: Node, chain: tuple[Call, ...]) -> Node:
    """``node`` seen from outside the tf(...) calls of ``chain`` (outermost first)."""
    for timeframe in reversed(chain):
        inner = node
        node = Call(timeframe.spec, (timeframe.args[0], inner), inner.pos)
        node.kind = inner.kind
    return node


def _history(node: Node, interval: str | None, acc: int, warm: bool, need: dict, warmup: int = WARMUP_BARS) -> None:
    """Bars per interval: along every path, 1 + the sum of lookbacks and offsets, plus ``warmup``
    bars once if the path goes through a smoothed function (``warmup=0``: the minimum)."""
    own = 0
    if isinstance(node, Offset):
        own = node.bars
    elif isinstance(node, Call) and node.spec.category != TIMEFRAME:
        own = node.spec.lookback(node.bound)
        warm = warm or node.spec.smoothed
    total = acc + own
    bars = total + 1 + (warmup if warm else 0)
    if bars > need.get(interval, 0):
        need[interval] = bars
    if is_timeframe(node):
        target, x = node.args
        if target == interval:
            _history(x, interval, total, warm, need, warmup)
        else:
            # +1: the target's current (still forming) bar is skipped, its previous one is used
            _history(x, target, bars_spanned(total, interval, target) + 1, warm, need, warmup)
        return
    for child in node.children():
        _history(child, interval, total, warm, need, warmup)


@dataclass(frozen=True, eq=False)
class CompiledFormula:
    """A parsed, checked formula.

    text       the formula as given
    root       the node tree
    terms      canonical text -> node of every series / function value the formula refers to
               (reported in ``Match.values``), in order of first appearance
    intervals  intervals named by ``tf(...)``
    """

    text: str
    root: Node
    terms: dict[str, Node]
    intervals: frozenset[str]
    _history_cache: dict = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.root.kind

    @property
    def key(self) -> str:
        """The formula in canonical form."""
        return self.root.key

    def history_bars(self, interval: str) -> dict[str, int]:
        """Bars of history to *load*, per interval, for a scan on ``interval`` (that interval first,
        then the ones named by tf(...)): ``minimum_bars`` plus a warm-up of WARMUP_BARS for paths
        through a smoothed function, so that smoothed values match a full-history computation."""
        return self._bars(interval, WARMUP_BARS)

    def minimum_bars(self, interval: str) -> dict[str, int]:
        """Bars of history a symbol must have, per interval, for the formula to be computable at
        its last bar: 1 + the sum of lookbacks and offsets along each path, without warm-up."""
        return self._bars(interval, 0)

    def _bars(self, interval: str, warmup: int) -> dict[str, int]:
        check_interval(interval)
        got = self._history_cache.get((interval, warmup))
        if got is None:
            need: dict = {}
            _history(self.root, interval, 0, False, need, warmup)
            got = {interval: need.pop(interval, 1)}
            got.update(sorted(need.items(), key=lambda kv: _seconds(kv[0])))
            self._history_cache[(interval, warmup)] = got
        return dict(got)


def _terms(node: Node, chain: tuple[Call, ...], out: dict[str, Node]) -> None:
    if is_timeframe(node):
        if node.kind == NUMBER:
            t = wrap_timeframes(node, chain)
            out.setdefault(t.key, t)
        _terms(node.args[1], chain + (node,), out)
        return
    if node.kind == NUMBER and not node.is_const and isinstance(node, (Field, Offset, Call)):
        t = wrap_timeframes(node, chain)
        out.setdefault(t.key, t)
    for child in node.children():
        _terms(child, chain, out)


def compile_expression(text: str) -> CompiledFormula:
    """Compile a formula or a plain numeric expression (e.g. ``sma(close, 20)``)."""
    root = parse(text)
    need: dict = {}
    _history(root, None, 0, False, need)
    worst = max(need.values(), default=1)
    if worst > MAX_HISTORY_BARS:
        raise FormulaError(f"formula needs {worst} bars of history; the limit is {MAX_HISTORY_BARS}", root.pos)
    terms: dict[str, Node] = {}
    _terms(root, (), terms)
    intervals = frozenset(n.args[0] for n in walk(root) if is_timeframe(n))
    return CompiledFormula(text=text, root=root, terms=terms, intervals=intervals)


def compile_formula(text: str) -> CompiledFormula:
    """Compile a scan formula; it must be a condition. Raises FormulaError."""
    compiled = compile_expression(text)
    if compiled.root.kind != COND:
        raise FormulaError(
            "a scan formula must be a condition such as close > sma(close, 20), not a number",
            compiled.root.pos,
        )
    return compiled


def uses_cross_section(formula: CompiledFormula) -> bool:
    """Whether ``formula`` calls rank, percentile or zscore (anywhere, inside tf(...) too): its
    value for one symbol then depends on every symbol of the panel."""
    return any(isinstance(node, Call) and node.spec.category == CROSS_SECTION for node in walk(formula.root))
