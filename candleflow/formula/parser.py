"""Formula text -> node tree.

The text is parsed with ``ast.parse(mode="eval")`` (which only builds a syntax tree; nothing is
compiled or run) and then converted node by node through an allow-list: any Python construct that
is not explicitly handled below is refused with a FormulaError. Limits (length, nesting, size,
windows, offsets, exponents) are checked before and during the conversion. The parser raises
FormulaError and nothing else.
"""

from __future__ import annotations

import ast
import difflib
import re
import threading
import warnings

from ..market.intervals import INTERVALS
from .errors import FormulaError
from .functions import ANY, CONDITION, FIELDS, FUNCTIONS, INTERVAL, LITERAL, SERIES, TIMEFRAME, WINDOW, Function
from .limits import MAX_DEPTH, MAX_EXPONENT, MAX_LENGTH, MAX_NODES, MAX_OFFSET, MAX_WINDOW
from .nodes import COND, NUMBER, Arith, Call, Compare, Field, Logic, Neg, Node, Not, Num, Offset, format_number, walk

_WHITESPACE = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\x0b": " ", "\x0c": " "})
_NOT_ASCII = re.compile(r"[^ -~]")

_NOT_ALLOWED = {
    "Lambda": "lambda expressions are",
    "ListComp": "list comprehensions are",
    "SetComp": "set comprehensions are",
    "DictComp": "dict comprehensions are",
    "GeneratorExp": "generator expressions are",
    "Await": "'await' is",
    "Yield": "'yield' is",
    "YieldFrom": "'yield from' is",
    "NamedExpr": "the walrus operator ':=' is",
    "Starred": "starred expressions ('*') are",
    "JoinedStr": "f-strings are",
    "FormattedValue": "f-strings are",
    "List": "lists are",
    "Tuple": "tuples are",
    "Set": "sets are",
    "Dict": "dicts are",
    "IfExp": "conditional expressions ('x if c else y') are",
    "Slice": "slices are",
}

_ARITH_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_OTHER_BINOPS = {
    ast.Mod: ("%", ""),
    ast.FloorDiv: ("//", "; use /"),
    ast.MatMult: ("@", ""),
    ast.LShift: ("<<", ""),
    ast.RShift: (">>", ""),
    ast.BitAnd: ("&", "; use 'and'"),
    ast.BitOr: ("|", "; use 'or'"),
    ast.BitXor: ("^", "; use ** for powers"),
}
_CMP_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_OTHER_CMPOPS = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}

_FUNCTION_NAMES = tuple(FUNCTIONS)
_PARSE_LOCK = threading.Lock()
_INTERVAL_LIST = ", ".join(INTERVALS)


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    quoted = [f"'{c}'" for c in close]
    if not quoted:
        return ""
    if len(quoted) == 1:
        return f"; did you mean {quoted[0]}?"
    return f"; did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"


def parse(text: str) -> Node:
    """Parse formula text into a node tree (raises FormulaError, never anything else)."""
    try:
        return _parse(text)
    except FormulaError:
        raise
    except RecursionError:
        raise FormulaError(f"formula is nested too deeply: more than {MAX_DEPTH} levels", 0) from None
    except MemoryError:
        raise FormulaError("formula is too large", 0) from None
    except Exception as exc:  # defensive: the parser must only ever raise FormulaError
        raise FormulaError(f"invalid formula ({type(exc).__name__})", 0) from None


def _parse(text: str) -> Node:
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, not {type(text).__name__}", 0)
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula is too long: {len(text)} characters, the limit is {MAX_LENGTH}", MAX_LENGTH)
    src = text.translate(_WHITESPACE)
    bad = _NOT_ASCII.search(src)
    if bad is not None:
        ch = bad.group()
        raise FormulaError(f"invalid character {ch!r} (U+{ord(ch):04X}); formulas are plain ASCII", bad.start())
    body = src.lstrip(" ")
    lead = len(src) - len(body)
    if not body.strip(" "):
        raise FormulaError("empty formula", 0)
    _check_nesting(src)
    try:
        with _PARSE_LOCK, warnings.catch_warnings():
            # warnings of the Python parser (e.g. "invalid decimal literal" for 1and) refuse the
            # formula instead of being printed; the lock because catch_warnings is process-wide
            warnings.simplefilter("error", SyntaxWarning)
            warnings.simplefilter("error", DeprecationWarning)
            tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, src, lead) from None
    except (ValueError, OverflowError) as exc:
        raise FormulaError(f"invalid syntax: {exc}", 0) from None
    return _Builder(body, lead).build(tree.body)


def _check_nesting(src: str) -> None:
    depth = 0
    quote = None
    for i, ch in enumerate(src):
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise FormulaError(f"formula is nested too deeply: more than {MAX_DEPTH} levels", i)
        elif ch in ")]}":
            depth -= 1


def _syntax_error(exc: SyntaxError, src: str, lead: int) -> FormulaError:
    msg = exc.msg or "invalid syntax"
    end = len(src.rstrip(" "))
    if exc.offset is None or exc.offset <= 0:
        pos = end
        if msg == "invalid syntax":
            msg = "invalid syntax: the formula ends too early"
        elif not msg.startswith("invalid syntax"):
            msg = f"invalid syntax: {msg}"
    else:
        pos = min(lead + exc.offset - 1, end)
        if not msg.startswith("invalid syntax"):
            msg = f"invalid syntax: {msg}"
    return FormulaError(msg, max(pos, 0))


def _shown(value: int | float) -> str:
    """A number literal as an error message shows it: in canonical form, but a whole number too
    large for that (or for a float at all: 1 followed by 400 zeros) digit for digit."""
    if isinstance(value, int) and abs(value) >= 1e15:
        return str(value)
    return format_number(value)


def _number_literal(node: ast.AST):
    """The value of a number literal (optionally signed), else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sign * node.value
    return None


class _Builder:
    def __init__(self, body: str, lead: int) -> None:
        self.body = body
        self.lead = lead
        self.count = 0

    def pos(self, node: ast.AST) -> int:
        return self.lead + getattr(node, "col_offset", 0)

    def fail(self, message: str, node_or_pos) -> FormulaError:
        pos = node_or_pos if isinstance(node_or_pos, int) else self.pos(node_or_pos)
        return FormulaError(message, pos)

    def op_pos(self, left: ast.AST, right: ast.AST, symbol: str) -> int:
        """Position of an operator symbol between two operands."""
        a, b = left.end_col_offset or 0, right.col_offset
        i = self.body.find(symbol, a, b)
        return self.lead + (i if i >= 0 else a)

    # ------------------------------------------------------------------ dispatch

    def build(self, node: ast.AST) -> Node:
        return self.visit(node, 1)

    def visit(self, node: ast.AST, depth: int) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(f"formula is too large: more than {MAX_NODES} elements", node)
        if depth > MAX_DEPTH:
            raise self.fail(f"formula is nested too deeply: more than {MAX_DEPTH} levels", node)
        name = type(node).__name__
        method = _VISITORS.get(name)
        if method is None:
            what = _NOT_ALLOWED.get(name)
            if what is None:
                what = f"'{name}' expressions are"
            raise self.fail(f"{what} not allowed", node)
        return method(self, node, depth)

    def number(self, node: ast.AST, depth: int, what: str) -> Node:
        out = self.visit(node, depth)
        if out.kind != NUMBER:
            raise self.fail(f"{what} must be a number or series, got a condition", node)
        return out

    def condition(self, node: ast.AST, depth: int, what: str) -> Node:
        out = self.visit(node, depth)
        if out.kind != COND:
            raise self.fail(f"{what} must be a condition (a comparison such as close > open), got a number", node)
        return out

    # ------------------------------------------------------------------ leaves

    def visit_Constant(self, node: ast.Constant, depth: int) -> Node:
        v = node.value
        if isinstance(v, bool) or v is None or v is Ellipsis:
            raise self.fail(f"the constant {v!r} is not allowed", node)
        if isinstance(v, str):
            raise self.fail('strings are only allowed as the interval of tf(), e.g. tf("1d", close)', node)
        if isinstance(v, bytes):
            raise self.fail("bytes literals are not allowed", node)
        if isinstance(v, complex):
            raise self.fail("complex numbers are not allowed", node)
        if isinstance(v, (int, float)):
            try:
                f = float(v)
            except OverflowError:
                f = float("inf")
            if f != f or f in (float("inf"), float("-inf")):
                raise self.fail("number is too large", node)
            return Num(f, self.pos(node))
        raise self.fail(f"the constant {type(v).__name__} is not allowed", node)

    def visit_Name(self, node: ast.Name, depth: int) -> Node:
        name = node.id
        if name in FIELDS:
            return Field(name, self.pos(node))
        if name in FUNCTIONS:
            fn = FUNCTIONS[name]
            raise self.fail(f"'{name}' is a function; call it, e.g. {fn.example}", node)
        hint = _suggest(name, FIELDS + _FUNCTION_NAMES)
        if not hint:
            hint = f"; the series are {', '.join(FIELDS)}"
        raise self.fail(f"unknown name '{name}'{hint}", node)

    def visit_Attribute(self, node: ast.Attribute, depth: int) -> Node:
        raise self.attribute_error(node)

    def attribute_error(self, node: ast.AST) -> FormulaError:
        """Report the leftmost attribute access of a chain like ``().__class__.__bases__[0]``."""
        found = None
        cur = node
        while isinstance(cur, (ast.Attribute, ast.Call, ast.Subscript)):
            if isinstance(cur, ast.Attribute):
                found = cur
                cur = cur.value
            elif isinstance(cur, ast.Call):
                cur = cur.func
            else:
                cur = cur.value
        assert found is not None
        attr_start = (found.end_col_offset or 0) - len(found.attr)
        dot = self.body.rfind(".", 0, attr_start)
        pos = self.lead + (dot if dot >= 0 else found.col_offset)
        return FormulaError(f"attribute access ('.{found.attr}') is not allowed", pos)

    # ------------------------------------------------------------------ offsets

    def visit_Subscript(self, node: ast.Subscript, depth: int) -> Node:
        if isinstance(node.value, (ast.Attribute, ast.Call)) and self._has_attribute(node.value):
            raise self.attribute_error(node.value)
        x = self.visit(node.value, depth + 1)
        sl = node.slice
        if isinstance(sl, ast.Slice):
            raise self.fail("slices are not allowed; an offset is a whole number of bars back, e.g. close[1]", sl)
        if isinstance(sl, ast.Tuple):
            raise self.fail("only one offset is allowed, e.g. close[1]", sl)
        k = _number_literal(sl)
        if k is None:
            got = "a string" if isinstance(sl, ast.Constant) and isinstance(sl.value, str) else "an expression"
            raise self.fail(f"offset must be a whole-number literal of bars back, e.g. close[1], got {got}", sl)
        if isinstance(k, float):
            raise self.fail(f"offset must be a whole number of bars, got {format_number(k) if k.is_integer() else k}", sl)
        if k < 0:
            raise self.fail(f"offset must not be negative, got {k}: x[k] looks k bars back, never ahead", sl)
        if x.is_const:
            raise self.fail("an offset needs a series, e.g. close[1], not a constant", node.value)
        total = k + (x.bars if isinstance(x, Offset) else 0)
        if k > MAX_OFFSET or total > MAX_OFFSET:
            raise self.fail(f"offset {total} is too large; the limit is {MAX_OFFSET} bars", sl)
        if isinstance(x, Offset):
            return Offset(x.x, total, self.pos(node))
        return Offset(x, k, self.pos(node))

    @staticmethod
    def _has_attribute(node: ast.AST) -> bool:
        cur = node
        while isinstance(cur, (ast.Attribute, ast.Call, ast.Subscript)):
            if isinstance(cur, ast.Attribute):
                return True
            cur = cur.func if isinstance(cur, ast.Call) else cur.value
        return False

    # ------------------------------------------------------------------ operators

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        op = node.op
        if isinstance(op, ast.Not):
            x = self.condition(node.operand, depth + 1, "the operand of 'not'")
            return Not(x, self.pos(node))
        if isinstance(op, ast.Invert):
            raise self.fail("operator '~' is not allowed; use 'not'", node)
        sym = "-" if isinstance(op, ast.USub) else "+"
        x = self.number(node.operand, depth + 1, f"the operand of unary '{sym}'")
        if sym == "+":
            return x
        if isinstance(x, Num):
            return Num(-x.value, self.pos(node))
        return Neg(x, self.pos(node))

    def visit_BinOp(self, node: ast.BinOp, depth: int) -> Node:
        op_type = type(node.op)
        if op_type in _OTHER_BINOPS:
            sym, hint = _OTHER_BINOPS[op_type]
            raise self.fail(f"operator '{sym}' is not allowed{hint}", self.op_pos(node.left, node.right, sym))
        sym = _ARITH_OPS[op_type]
        left = self.number(node.left, depth + 1, f"the left operand of '{sym}'")
        if sym == "**":
            e = _number_literal(node.right)
            if e is None or abs(e) > MAX_EXPONENT:
                got = "an expression" if e is None else _shown(e)
                raise self.fail(
                    f"the exponent of ** must be a number literal between -{MAX_EXPONENT} and {MAX_EXPONENT}, got {got}",
                    node.right,
                )
            self.count += 1
            right: Node = Num(float(e), self.pos(node.right))
        else:
            right = self.number(node.right, depth + 1, f"the right operand of '{sym}'")
        return Arith(sym, left, right, self.pos(node))

    def visit_BoolOp(self, node: ast.BoolOp, depth: int) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        operands = tuple(self.condition(v, depth + 1, f"each operand of '{op}'") for v in node.values)
        return Logic(op, operands, self.pos(node))

    def visit_Compare(self, node: ast.Compare, depth: int) -> Node:
        operands_ast = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if type(op) in _OTHER_CMPOPS:
                sym = _OTHER_CMPOPS[type(op)]
                pos = self.op_pos(operands_ast[i], operands_ast[i + 1], sym.split()[0])
                raise self.fail(f"operator '{sym}' is not allowed", pos)
        syms = [_CMP_OPS[type(op)] for op in node.ops]
        operands = []
        for i, o in enumerate(operands_ast):
            sym = syms[i - 1] if i > 0 else syms[0]
            operands.append(self.number(o, depth + 1, f"each operand of '{sym}'"))
        pairs = tuple(
            Compare(sym, operands[i], operands[i + 1], self.pos(node) if i == 0 else operands[i].pos)
            for i, sym in enumerate(syms)
        )
        if len(pairs) == 1:
            return pairs[0]
        return Logic("and", pairs, self.pos(node))

    # ------------------------------------------------------------------ calls

    def visit_Call(self, node: ast.Call, depth: int) -> Node:
        func = node.func
        if not isinstance(func, ast.Name):
            if self._has_attribute(func):
                raise self.attribute_error(func)
            raise self.fail("only the functions of the formula language can be called", func)
        name = func.id
        if name in FIELDS:
            raise self.fail(f"'{name}' is a series, not a function; write {name}, or {name}[1] for the previous bar", func)
        spec = FUNCTIONS.get(name)
        if spec is None:
            hint = _suggest(name, _FUNCTION_NAMES) or f"; the functions are {', '.join(_FUNCTION_NAMES)}"
            raise self.fail(f"unknown function '{name}'{hint}", func)
        return self.call(spec, node, depth)

    def call(self, spec: Function, node: ast.Call, depth: int) -> Node:
        name = spec.name
        sig = spec.signature
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail("starred arguments ('*') are not allowed", a)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail("keyword argument unpacking ('**') is not allowed", kw)
        params = spec.params
        positional = list(node.args)
        start = 0
        if (
            spec.optional_leading_series
            and positional
            and len(positional) < len(params)
            and _number_literal(positional[0]) is not None
        ):
            start = 1  # rsi(14) is rsi(close, 14)
        if len(positional) > len(params) - start:
            raise self.fail(f"{name}() {_takes(spec)}, got {len(positional)}; signature: {sig}", node)
        bound: dict[str, ast.AST] = {}
        for p, a in zip(params[start:], positional):
            bound[p.name] = a
        names = {p.name for p in params}
        for kw in node.keywords:
            if kw.arg not in names:
                raise self.fail(f"{name}() got an unexpected keyword argument '{kw.arg}'; signature: {sig}", kw)
            if kw.arg in bound:
                raise self.fail(f"{name}() got multiple values for argument '{kw.arg}'", kw)
            bound[kw.arg] = kw.value
        missing = [p.name for p in params if p.required and p.name not in bound]
        if missing:
            if node.keywords:
                raise self.fail(f"{name}() missing argument '{missing[0]}'; signature: {sig}", node)
            raise self.fail(f"{name}() {_takes(spec)}, got {len(positional)}; signature: {sig}", node)
        args: list[object] = []
        for p in params:
            if p.name not in bound:
                d = p.default
                args.append(Field(d, self.pos(node)) if p.kind == SERIES and isinstance(d, str) else d)
                continue
            args.append(self.argument(spec, p, bound[p.name], depth + 1))
        values = {p.name: a for p, a in zip(params, args)}
        if spec.check is not None:
            problem = spec.check(values)
            if problem:
                raise self.fail(f"{name}() {problem}", node)
        out = Call(spec, tuple(args), self.pos(node))
        if spec.category == TIMEFRAME:  # tf(interval, x): of the kind of x
            interval, inner = args
            assert isinstance(inner, Node)
            out.kind = inner.kind
            _check_nested_timeframes(inner, interval)
        return out

    def argument(self, spec: Function, p, a: ast.AST, depth: int) -> object:
        name = spec.name
        is_str = isinstance(a, ast.Constant) and isinstance(a.value, str)
        if p.kind in (SERIES, CONDITION, ANY):
            if is_str and spec.category != TIMEFRAME:  # tf's x: visit() says where strings belong
                what = "a condition" if p.kind == CONDITION else "a number or series"
                raise self.fail(f"{name}() argument '{p.name}' must be {what}, got a string", a)
            if p.kind == SERIES:
                return self.number(a, depth, f"{name}() argument '{p.name}'")
            if p.kind == CONDITION:
                return self.condition(a, depth, f"{name}() argument '{p.name}'")
            return self.visit(a, depth)
        if p.kind == INTERVAL:
            if not is_str:
                raise self.fail(f"{name}() argument '{p.name}' must be an interval string such as \"1d\"", a)
            self.count += 1
            if a.value not in INTERVALS:
                raise self.fail(f"unknown interval '{a.value}'; intervals are {_INTERVAL_LIST}", a)
            return a.value
        v = _number_literal(a)
        if v is None:
            got = "a string" if is_str else "an expression"
            kind = "a whole-number literal such as 20" if p.kind == WINDOW else "a number literal"
            raise self.fail(f"{name}() argument '{p.name}' must be {kind}, got {got}", a)
        self.count += 1
        if p.kind == WINDOW:
            if isinstance(v, float):
                raise self.fail(f"{name}() argument '{p.name}' must be a whole number, got {v!r}", a)
            if v > MAX_WINDOW:
                raise self.fail(f"{name}() window {p.name}={v} is too large; the limit is {MAX_WINDOW}", a)
            if p.min is not None and v < p.min:
                raise self.fail(f"{name}() argument '{p.name}' must be at least {p.min}, got {v}", a)
            return int(v)
        assert p.kind == LITERAL
        if (p.min is not None and v < p.min) or (p.max is not None and v > p.max):
            raise self.fail(
                f"{name}() argument '{p.name}' must be between {format_number(p.min)} and {format_number(p.max)}, "
                f"got {_shown(v)}",
                a,
            )
        return v


def _takes(spec: Function) -> str:
    lo, hi = spec.min_args, spec.max_args
    if lo == hi:
        return f"takes {hi} argument{'s' if hi != 1 else ''}"
    return f"takes {lo} to {hi} arguments"


def _check_nested_timeframes(inner: Node, outer_interval: str) -> None:
    for n in walk(inner):
        if isinstance(n, Call) and n.spec.category == TIMEFRAME:
            iv = n.args[0]
            if INTERVALS.index(iv) < INTERVALS.index(outer_interval):
                raise FormulaError(
                    f'tf("{iv}", ...) inside tf("{outer_interval}", ...): an inner interval must be at least '
                    f"as long as the outer one",
                    n.pos,
                )


_VISITORS = {
    "Constant": _Builder.visit_Constant,
    "Name": _Builder.visit_Name,
    "Attribute": _Builder.visit_Attribute,
    "Subscript": _Builder.visit_Subscript,
    "UnaryOp": _Builder.visit_UnaryOp,
    "BinOp": _Builder.visit_BinOp,
    "BoolOp": _Builder.visit_BoolOp,
    "Compare": _Builder.visit_Compare,
    "Call": _Builder.visit_Call,
}
