"""Scans from configuration: a YAML file of name, formula, interval and universe."""

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from candleflow.config_yaml import load_config_yaml
from candleflow.formula import Scan, compile_formula
from candleflow.formula.compiler import uses_cross_section
from candleflow.market.intervals import check_interval
from candleflow.market.symbols import SymbolError, read_universe_file, validate_symbols

SCAN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # fullmatch: "$" would allow a final newline
FIELDS = {"name", "formula", "interval", "universe"}


@dataclass(frozen=True)
class ConfiguredScan(Scan):
    """A scan restricted to ``universe`` (symbols), or run over every symbol of a run (None)."""

    universe: tuple[str, ...] | None = None


def ranks_across_symbols(scan: Scan) -> bool:
    """Whether the scan's formula compares symbols with each other (rank, percentile, zscore):
    then it is evaluated over its whole universe at once."""
    return uses_cross_section(compile_formula(scan.formula))


def _universe(value, base: Path | None) -> tuple[str, ...] | None:
    """A list of symbols, or the name of a universe file in the scans file's folder ``base``."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(validate_symbols(value))
    if not isinstance(value, str):
        raise ValueError(f"universe must be a list of symbols or a file name, not {type(value).__name__}")
    return tuple(read_universe_file(_universe_file(value, base)))


def _universe_file(name: str, base: Path | None) -> Path:
    """The universe file ``name`` inside ``base``, symlinks followed; anything else is refused
    before it is read, so a scans file cannot make candleflow read (and report) any file."""
    if base is None:
        raise ValueError(f"universe file {name!r} needs a scans file of your own "
                         "(CANDLEFLOW_SCANS_FILE); list the symbols instead")
    if Path(name).is_absolute():
        raise ValueError(f"universe file {name!r} must be a path relative to the scans file's folder")
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()):
        raise ValueError(f"universe file {name!r} is outside the scans file's folder")
    return path


def _text(entry: dict, field: str, default: str) -> str:
    """The string ``field`` of a scan's entry; another type is refused, never turned into text."""
    value = entry.get(field, default)
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {type(value).__name__}")
    return value


def load_scans(path: str | Path | None = None) -> list[ConfiguredScan]:
    """Scans from ``path`` (default: the packaged ``config/scans.yaml``), each formula compiled.

    ``universe`` (optional) is a list of symbols or a universe file in the scans file's folder;
    without it a scan runs over every symbol of the run. YAML anchors and aliases are refused.

    A bad entry raises ValueError naming the file, the scan and the problem, so that a broken
    configuration stops a run before any work, not half-way through.
    """
    if path:
        text, where, base = Path(path).read_text(), str(path), Path(path).parent
    else:
        text, where, base = (resources.files("candleflow").joinpath("config/scans.yaml").read_text(),
                             "scans.yaml", None)
    document = load_config_yaml(text, where) or {}
    entries = document.get("scans") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a top-level 'scans:' list")
    scans = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) - FIELDS:
            raise ValueError(f"{where}: scan #{number} may only have {', '.join(sorted(FIELDS))}")
        try:
            name = _text(entry, "name", "")
        except ValueError as exc:
            raise ValueError(f"{where}: scan #{number}: {exc}") from None
        if not SCAN_NAME.fullmatch(name):
            raise ValueError(f"{where}: scan #{number} has an invalid name {name!r} "
                             "(lower-case letters, digits and _, starting with a letter)")
        try:
            interval = check_interval(_text(entry, "interval", "1d"))
            formula = _text(entry, "formula", "")
            compile_formula(formula)
            universe = _universe(entry.get("universe"), base)
        except (ValueError, SymbolError, OSError) as exc:
            raise ValueError(f"{where}: scan {name!r}: {exc}") from None
        scans.append(ConfiguredScan(name=name, formula=formula, interval=interval, universe=universe))
    if len({s.name for s in scans}) != len(scans):
        raise ValueError(f"{where}: scan names must be unique")
    return scans
