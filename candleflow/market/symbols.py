"""Ticker symbols: the strict pattern, and the universe file.

A symbol is 1-6 upper-case letters or digits starting with a letter, optionally followed by one
share-class suffix of 1-3 letters or digits after a dot or dash (``AAPL``, ``BRK.B``, ``BF-B``).
Anything else is refused before it can become a partition key, a file name or a query parameter.
"""

import re
from collections.abc import Iterable
from pathlib import Path

#: Matched with ``fullmatch``: a pattern ending in ``$`` also matches before a final newline.
SYMBOL_PATTERN = re.compile(r"[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?")
SYMBOL_RULE = ("expected 1-6 upper-case letters or digits starting with a letter, optionally with a"
               " share class after '.' or '-' (e.g. AAPL, BRK.B)")


class SymbolError(ValueError):
    """A symbol that does not match the pattern, or is not in the universe."""


def validate_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        raise SymbolError(f"malformed symbol {symbol!r}: {SYMBOL_RULE}")
    return symbol


def validate_symbols(symbols: Iterable[str]) -> list[str]:
    """Validated symbols in first-seen order without repeats."""
    return list(dict.fromkeys(validate_symbol(s) for s in symbols))


def require_known(symbols: Iterable[str], universe: Iterable[str]) -> list[str]:
    """``symbols`` validated, or SymbolError naming those that are not in ``universe``."""
    wanted = validate_symbols(symbols)
    known = set(universe)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise SymbolError(f"unknown symbol(s) not in the universe: {', '.join(unknown)}")
    return wanted


def read_universe_file(path: str | Path) -> list[str]:
    """Symbols from a universe file: one per line; blank lines and ``#`` comments are ignored.

    A bad line is named by its number, never quoted: the file may not be a universe file at all
    (a path that reached a secret), and an error message must not echo what it holds.
    """
    symbols = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            symbols.append(validate_symbol(line))
        except SymbolError:
            raise SymbolError(f"{path}:{number}: not a valid symbol ({SYMBOL_RULE})") from None
    return list(dict.fromkeys(symbols))
