"""The formula language's own expression tree (built from Python's ast by ``parser``).

Every node has ``pos`` (character offset in the formula), ``kind`` ("number" or "cond") and a
canonical text ``key``: the formula spelled in one normal form (calls with every argument, defaults
included). Equal keys mean equal values, so ``key`` is the cache key of the block evaluator and the
name of a term in ``Match.values``.
"""

from __future__ import annotations

NUMBER = "number"
COND = "cond"

# Precedence levels used to put parentheses back when rendering keys.
P_OR, P_AND, P_NOT, P_CMP, P_ADD, P_MUL, P_UNARY, P_POW, P_ATOM = range(1, 10)

ARITH_PREC = {"+": P_ADD, "-": P_ADD, "*": P_MUL, "/": P_MUL, "**": P_POW}


def format_number(value: float | int) -> str:
    """Canonical text of a number literal: whole numbers without a decimal point."""
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def format_literal(value: object) -> str:
    if isinstance(value, str):
        return '"' + value + '"'
    return format_number(value)  # type: ignore[arg-type]


def _wrap(node: "Node", min_prec: int) -> str:
    return f"({node.key})" if node.prec < min_prec else node.key


class Node:
    """Base class. Subclasses set pos, kind, key, prec and children()."""

    __slots__ = ("pos", "kind", "key", "prec")
    pos: int
    kind: str
    key: str
    prec: int

    @property
    def is_const(self) -> bool:
        return False

    def children(self) -> tuple["Node", ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


class Num(Node):
    __slots__ = ("value",)

    def __init__(self, value: float, pos: int) -> None:
        # + 0.0 turns -0.0 (from "-0", "-0.0") into 0.0: the key spells it "0", and a literal must
        # be what its key says (a "-0" with the precedence of a negative number was keyed "0" but
        # parenthesised as "(0) ** 2", whose own key is "0 ** 2": not a fixed point)
        self.value = float(value) + 0.0
        self.pos = pos
        self.kind = NUMBER
        self.key = format_number(self.value)
        self.prec = P_UNARY if self.value < 0 else P_ATOM

    @property
    def is_const(self) -> bool:
        return True


class Field(Node):
    """One of the bar series: open, high, low, close, volume, vwap."""

    __slots__ = ("name",)

    def __init__(self, name: str, pos: int) -> None:
        self.name = name
        self.pos = pos
        self.kind = NUMBER
        self.key = name
        self.prec = P_ATOM


class Offset(Node):
    """``x[bars]``: the value ``bars`` bars of the symbol back."""

    __slots__ = ("x", "bars")

    def __init__(self, x: Node, bars: int, pos: int) -> None:
        self.x = x
        self.bars = bars
        self.pos = pos
        self.kind = x.kind
        self.key = f"{_wrap(x, P_ATOM)}[{bars}]"
        self.prec = P_ATOM

    def children(self) -> tuple[Node, ...]:
        return (self.x,)


class _Unary(Node):
    """A prefix operator over one operand; subclasses set the spelling, kind and precedence."""

    __slots__ = ("x",)
    PREFIX: str
    KIND: str
    PREC: int

    def __init__(self, x: Node, pos: int) -> None:
        self.x = x
        self.pos = pos
        self.kind = self.KIND
        self.key = self.PREFIX + _wrap(x, self.PREC)
        self.prec = self.PREC

    @property
    def is_const(self) -> bool:
        return self.x.is_const

    def children(self) -> tuple[Node, ...]:
        return (self.x,)


class Neg(_Unary):
    __slots__ = ()
    PREFIX, KIND, PREC = "-", NUMBER, P_UNARY


class _Binary(Node):
    """``left op right``; subclasses set the kind, key and precedence."""

    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Node, right: Node, pos: int) -> None:
        self.op = op
        self.left = left
        self.right = right
        self.pos = pos

    @property
    def is_const(self) -> bool:
        return self.left.is_const and self.right.is_const

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


class Arith(_Binary):
    """``left op right`` with op in + - * / **."""

    __slots__ = ()

    def __init__(self, op: str, left: Node, right: Node, pos: int) -> None:
        super().__init__(op, left, right, pos)
        self.kind = NUMBER
        p = ARITH_PREC[op]
        if op == "**":
            self.key = f"{_wrap(left, P_POW + 1)} ** {_wrap(right, P_UNARY)}"
        else:
            self.key = f"{_wrap(left, p)} {op} {_wrap(right, p + 1)}"
        self.prec = p


class Compare(_Binary):
    """``left op right`` with op in < <= > >= == !=."""

    __slots__ = ()

    def __init__(self, op: str, left: Node, right: Node, pos: int) -> None:
        super().__init__(op, left, right, pos)
        self.kind = COND
        self.key = f"{_wrap(left, P_ADD)} {op} {_wrap(right, P_ADD)}"
        self.prec = P_CMP


class Logic(Node):
    """``a and b and ...`` / ``a or b or ...`` (three-valued, see the language reference)."""

    __slots__ = ("op", "operands")

    def __init__(self, op: str, operands: tuple[Node, ...], pos: int) -> None:
        self.op = op
        self.operands = operands
        self.pos = pos
        self.kind = COND
        p = P_AND if op == "and" else P_OR
        self.key = f" {op} ".join(_wrap(o, p + 1) for o in operands)
        self.prec = p

    @property
    def is_const(self) -> bool:
        return all(o.is_const for o in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands


class Not(_Unary):
    __slots__ = ()
    PREFIX, KIND, PREC = "not ", COND, P_NOT


class Call(Node):
    """A call of a registered function. ``args`` follow the declared parameters, defaults filled:
    Nodes for series/condition parameters, plain int/float/str for literal parameters."""

    __slots__ = ("spec", "args")

    def __init__(self, spec, args: tuple, pos: int) -> None:
        self.spec = spec
        self.args = args
        self.pos = pos
        self.kind = spec.result
        parts = [a.key if isinstance(a, Node) else format_literal(a) for a in args]
        self.key = f"{spec.name}({', '.join(parts)})"
        self.prec = P_ATOM

    @property
    def bound(self) -> dict[str, object]:
        return {p.name: a for p, a in zip(self.spec.params, self.args)}

    def children(self) -> tuple[Node, ...]:
        return tuple(a for a in self.args if isinstance(a, Node))


def walk(node: Node):
    """Pre-order traversal (iterative; trees are depth-capped anyway)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children()))
