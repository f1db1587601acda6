"""Bad formulas: each must raise FormulaError with an exact message and position."""

import builtins

import pytest

from candleflow.formula import FormulaError, compile_formula
from candleflow.formula.functions import FUNCTIONS

FUNCTION_LIST = ", ".join(FUNCTIONS)  # in the order they are declared

CORPUS = [
    # unknown names and functions, with suggestions
    ("smaa(close, 5) > 1", "unknown function 'smaa'; did you mean 'sma'?", 0),
    ("close > emaa(close, 5)", "unknown function 'emaa'; did you mean 'ema'?", 8),
    ("clsoe > 1", "unknown name 'clsoe'; did you mean 'close'?", 0),
    ("foo > 1", "unknown name 'foo'; the series are open, high, low, close, volume, vwap", 0),
    ("rsi > 30", "'rsi' is a function; call it, e.g. rsi(14)", 0),
    ("__import__('os')", f"unknown function '__import__'; the functions are {FUNCTION_LIST}", 0),
    ('open("/etc/passwd")', "'open' is a series, not a function; write open, or open[1] for the previous bar", 0),
    ("close()", "'close' is a series, not a function; write close, or close[1] for the previous bar", 0),
    ("sma(close, 5)(1) > 0", "only the functions of the formula language can be called", 0),
    # argument counts, keywords
    ("close > sma(close)", "sma() takes 2 arguments, got 1; signature: sma(x, n)", 8),
    ("sma(close, 5, 6) > 1", "sma() takes 2 arguments, got 3; signature: sma(x, n)", 0),
    (
        "macd(close, 5, 10, 3, 4) > 0",
        "macd() takes 1 to 4 arguments, got 5; signature: macd(x, fast=12, slow=26, signal=9)",
        0,
    ),
    ("rsi(close, 14, 3) < 30", "rsi() takes 0 to 2 arguments, got 3; signature: rsi(x=close, n=14)", 0),
    ("abs(close, 2) > 1", "abs() takes 1 argument, got 2; signature: abs(x)", 0),
    ("rank() > 1", "rank() takes 1 argument, got 0; signature: rank(x)", 0),
    ("tf('1d') > 1", "tf() takes 2 arguments, got 1; signature: tf(interval, x)", 0),
    (
        "sma(close, n=5, period=3) > 1",
        "sma() got an unexpected keyword argument 'period'; signature: sma(x, n)",
        16,
    ),
    ("sma(close, 5, n=5) > 1", "sma() got multiple values for argument 'n'", 14),
    ("sma(x=close) > 1", "sma() missing argument 'n'; signature: sma(x, n)", 0),
    ("sma(*close)", "starred arguments ('*') are not allowed", 4),
    ("sma(**close)", "keyword argument unpacking ('**') is not allowed", 4),
    # literal arguments and limits
    ("close > sma(close, 10000)", "sma() window n=10000 is too large; the limit is 5000", 19),
    ("close > highest(high, 5001)", "highest() window n=5001 is too large; the limit is 5000", 22),
    ("close > sma(close, 1)", "sma() argument 'n' must be at least 2, got 1", 19),
    ("close > sma(close, -3)", "sma() argument 'n' must be at least 2, got -3", 19),
    ("close > ema(close, 5.5)", "ema() argument 'n' must be a whole number, got 5.5", 19),
    ("close > sma(close, open)", "sma() argument 'n' must be a whole-number literal such as 20, got an expression", 19),
    ('sma(close, "5") > 1', "sma() argument 'n' must be a whole-number literal such as 20, got a string", 11),
    ('sma("close", 5) > 1', "sma() argument 'x' must be a number or series, got a string", 4),
    ("bb_upper(close, 20, 11) > 1", "bb_upper() argument 'k' must be between 0 and 10, got 11", 20),
    ("macd(close, 26, 12) > 0", "macd() needs fast < slow, got fast=26, slow=12", 0),
    ("any_of(close, 3)", "any_of() argument 'cond' must be a condition (a comparison such as close > open), got a number", 7),
    ("close[1001] > 1", "offset 1001 is too large; the limit is 1000 bars", 6),
    ("close[999][2] > 1", "offset 1001 is too large; the limit is 1000 bars", 11),
    ("close[-1] > 1", "offset must not be negative, got -1: x[k] looks k bars back, never ahead", 6),
    ("close[1.5] > 1", "offset must be a whole number of bars, got 1.5", 6),
    ("close['a'] > 1", "offset must be a whole-number literal of bars back, e.g. close[1], got a string", 6),
    ("close[open] > 1", "offset must be a whole-number literal of bars back, e.g. close[1], got an expression", 6),
    ("close[1:2] > 1", "slices are not allowed; an offset is a whole number of bars back, e.g. close[1]", 6),
    ("close[1, 2] > 1", "only one offset is allowed, e.g. close[1]", 6),
    ("5[1] > 1", "an offset needs a series, e.g. close[1], not a constant", 0),
    # exponents
    ("2 ** 1000000 > 1", "the exponent of ** must be a number literal between -10 and 10, got 1000000", 5),
    ("9**9**9", "the exponent of ** must be a number literal between -10 and 10, got an expression", 3),
    ("close ** close > 1", "the exponent of ** must be a number literal between -10 and 10, got an expression", 9),
    ("close ** -11 > 1", "the exponent of ** must be a number literal between -10 and 10, got -11", 9),
    # found by the fuzz test: a whole number too large for a float (was "invalid formula (OverflowError)")
    ("bb_upper(close, 3, 1" + "0" * 400 + ") > 0",
     "bb_upper() argument 'k' must be between 0 and 10, got 1" + "0" * 400, 19),
    ("bb_upper(close, 3, -1" + "0" * 400 + ") > 0",
     "bb_upper() argument 'k' must be between 0 and 10, got -1" + "0" * 400, 19),
    # syntax
    ("close >", "invalid syntax: the formula ends too early", 7),
    ("close > 1 +", "invalid syntax: the formula ends too early", 11),
    ("close > > 1", "invalid syntax", 8),
    ("sma(close, 5", "invalid syntax: '(' was never closed", 3),
    ("close > 1)", "invalid syntax: unmatched ')'", 9),
    ("close >= 1.0.0", "invalid syntax", 12),
    ("close>1or close<2", "invalid syntax: invalid decimal literal", 6),
    ("tf('\\d', close) > 1", "invalid syntax: invalid escape sequence '\\d'", 3),
    ("", "empty formula", 0),
    ("   ", "empty formula", 0),
    ("close > \u00e9", "invalid character '\u00e9' (U+00E9); formulas are plain ASCII", 8),
    ("close\x00 > 1", "invalid character '\\x00' (U+0000); formulas are plain ASCII", 5),
    # constructs outside the allow-list
    ("close.__class__", "attribute access ('.__class__') is not allowed", 5),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access ('.__class__') is not allowed", 2),
    ("__import__('os').system('ls')", "attribute access ('.system') is not allowed", 16),
    ("close.x()", "attribute access ('.x') is not allowed", 5),
    ("lambda: 1", "lambda expressions are not allowed", 0),
    ("[x for x in close]", "list comprehensions are not allowed", 0),
    ("{x for x in close}", "set comprehensions are not allowed", 0),
    ("(x for x in close)", "generator expressions are not allowed", 0),
    ("(x := 1)", "the walrus operator ':=' is not allowed", 1),
    ("f'{close}'", "f-strings are not allowed", 0),
    ("close if open else high", "conditional expressions ('x if c else y') are not allowed", 0),
    ("[close]", "lists are not allowed", 0),
    ("{1: 2}", "dicts are not allowed", 0),
    ("await close", "'await' is not allowed", 0),
    ("True", "the constant True is not allowed", 0),
    ("None", "the constant None is not allowed", 0),
    ("close > 1j", "complex numbers are not allowed", 8),
    ("close > b'1'", "bytes literals are not allowed", 8),
    ("close > 1e999", "number is too large", 8),
    ('close > "5"', 'strings are only allowed as the interval of tf(), e.g. tf("1d", close)', 8),
    ("close & open", "operator '&' is not allowed; use 'and'", 6),
    ("close | open", "operator '|' is not allowed; use 'or'", 6),
    ("close % 2 > 1", "operator '%' is not allowed", 6),
    ("close // 2 > 1", "operator '//' is not allowed; use /", 6),
    ("~close > 1", "operator '~' is not allowed; use 'not'", 0),
    ("close is open", "operator 'is' is not allowed", 6),
    ("close in open", "operator 'in' is not allowed", 6),
    # kinds
    ("sma(close, 5)", "a scan formula must be a condition such as close > sma(close, 20), not a number", 0),
    ("close > 1 and volume", "each operand of 'and' must be a condition (a comparison such as close > open), got a number", 14),
    ("not close", "the operand of 'not' must be a condition (a comparison such as close > open), got a number", 4),
    ("close + (open > 1) > 2", "the right operand of '+' must be a number or series, got a condition", 9),
    ("(close > 1) > 2", "each operand of '>' must be a number or series, got a condition", 1),
    # timeframes
    ("tf('2d', close) > 1", "unknown interval '2d'; intervals are 1m, 5m, 15m, 30m, 1h, 1d", 3),
    ("tf(close, '1d') > 1", "tf() argument 'interval' must be an interval string such as \"1d\"", 3),
    (
        'tf("1d", tf("1h", close)) > 1',
        'tf("1h", ...) inside tf("1d", ...): an inner interval must be at least as long as the outer one',
        9,
    ),
    # size limits
    ("(" * 500 + "1" + ")" * 500, "formula is nested too deeply: more than 32 levels", 32),
    ("-" * 1500 + "close > 1", "formula is nested too deeply: more than 32 levels", 31),
    ("not " * 40 + "close > 1", "formula is nested too deeply: more than 32 levels", 128),
    ("sma(" * 40 + "close" + ", 2)" * 40 + " > 1", "formula is nested too deeply: more than 32 levels", 131),
    (" and ".join(["close > 1"] * 100), "formula is too large: more than 256 elements", 1190),
    ("x" * 100_000, "formula is too long: 100000 characters, the limit is 2000", 2000),
    ("1" * 1999 + ">close", "formula is too long: 2005 characters, the limit is 2000", 2000),
    ("1" * 1990 + " > close", "number is too large", 0),
    # multi-line input: positions count characters from the start of the text
    ("open > 1 and\nvolume > 2 and\nclose > smaa(close, 3)", "unknown function 'smaa'; did you mean 'sma'?", 36),
]


@pytest.mark.parametrize("formula,message,position", CORPUS, ids=[repr(c[0][:40]) for c in CORPUS])
def test_bad_formula_exact_error(formula, message, position):
    with pytest.raises(FormulaError) as info:
        compile_formula(formula)
    err = info.value
    assert err.message == message
    assert err.position == position
    assert str(err) == f"{message} at column {position}"
    assert isinstance(err, ValueError)


def test_error_position_points_into_the_text():
    text = "close > sma(close, 20) and rsi(14) < 30 and volume > smaa(volume, 20)"
    with pytest.raises(FormulaError) as info:
        compile_formula(text)
    assert text[info.value.position :].startswith("smaa(")


def test_not_a_string():
    with pytest.raises(FormulaError) as info:
        compile_formula(42)  # type: ignore[arg-type]
    assert info.value.message == "a formula must be a string, not int"


def test_bad_formulas_execute_nothing(monkeypatch):
    """The dangerous corpus entries are refused without calling import/eval/exec/open."""
    calls = []
    real_import = builtins.__import__

    def spy_import(*args, **kwargs):
        calls.append(("import", args[0]))
        return real_import(*args, **kwargs)

    def forbidden(name):
        def f(*args, **kwargs):
            calls.append((name, args[:1]))
            raise AssertionError(f"{name} called")

        return f

    dangerous = [c[0] for c in CORPUS if "__" in c[0] or "open(" in c[0] or "lambda" in c[0] or "**" in c[0]]
    assert len(dangerous) >= 6
    outcomes = []
    monkeypatch.setattr(builtins, "__import__", spy_import)
    for name in ("eval", "exec", "open"):
        monkeypatch.setattr(builtins, name, forbidden(name))
    calls.clear()  # monkeypatch itself may import while installing the spies
    try:
        for text in dangerous:  # nothing but the compiler runs while the spies are installed
            try:
                compile_formula(text)
                outcomes.append("compiled")
            except FormulaError:
                outcomes.append("refused")
    finally:
        monkeypatch.undo()
    assert calls == []
    assert outcomes == ["refused"] * len(dangerous)


def test_error_is_picklable():
    import pickle

    err = FormulaError("unknown name 'x'", 3)
    back = pickle.loads(pickle.dumps(err))
    assert (back.message, back.position, str(back)) == (err.message, err.position, str(err))
