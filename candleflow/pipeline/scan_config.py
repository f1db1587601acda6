"""Scans from configuration: a YAML file of name, formula, interval and universe."""

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from candleflow.formula import Scan, compile_formula
from candleflow.market.intervals import check_interval
from candleflow.market.symbols import SymbolError, read_universe_file, validate_symbols

SCAN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FIELDS = {"name", "formula", "interval", "universe"}


@dataclass(frozen=True)
class ConfiguredScan(Scan):
    """A scan restricted to ``universe`` (symbols), or run over every symbol of a run (None)."""

    universe: tuple[str, ...] | None = None


def _universe(value, base: Path | None) -> tuple[str, ...] | None:
    """A list of symbols, or the path of a universe file (relative to the scans file)."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(validate_symbols(str(v) for v in value))
    path = Path(str(value))
    return tuple(read_universe_file(path if path.is_absolute() or base is None else base / path))


def load_scans(path: str | Path | None = None) -> list[ConfiguredScan]:
    """Scans from ``path`` (default: the packaged ``config/scans.yaml``), each formula compiled.

    ``universe`` (optional) is a list of symbols or a universe file; without it a scan runs over
    every symbol of the run.

    A bad entry raises ValueError naming the file, the scan and the problem, so that a broken
    configuration stops a run before any work, not half-way through.
    """
    if path:
        text, where, base = Path(path).read_text(), str(path), Path(path).parent
    else:
        text, where, base = (resources.files("candleflow").joinpath("config/scans.yaml").read_text(),
                             "scans.yaml", None)
    document = yaml.safe_load(text) or {}
    entries = document.get("scans") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a top-level 'scans:' list")
    scans = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) - FIELDS:
            raise ValueError(f"{where}: scan #{number} may only have {', '.join(sorted(FIELDS))}")
        name = str(entry.get("name", ""))
        if not SCAN_NAME.match(name):
            raise ValueError(f"{where}: scan #{number} has an invalid name {name!r} "
                             "(lower-case letters, digits and _, starting with a letter)")
        try:
            interval = check_interval(str(entry.get("interval", "1d")))
            compile_formula(str(entry.get("formula", "")))
            universe = _universe(entry.get("universe"), base)
        except (ValueError, SymbolError, OSError) as exc:
            raise ValueError(f"{where}: scan {name!r}: {exc}") from None
        scans.append(ConfiguredScan(name=name, formula=str(entry["formula"]), interval=interval,
                                    universe=universe))
    if len({s.name for s in scans}) != len(scans):
        raise ValueError(f"{where}: scan names must be unique")
    return scans
