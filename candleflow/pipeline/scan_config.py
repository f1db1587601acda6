"""Scans from configuration: a YAML file of name, formula and interval."""

import re
from importlib import resources
from pathlib import Path

import yaml

from candleflow.formula import Scan, compile_formula
from candleflow.market.intervals import check_interval

SCAN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def load_scans(path: str | Path | None = None) -> list[Scan]:
    """Scans from ``path`` (default: the packaged ``config/scans.yaml``), each formula compiled.

    A bad entry raises ValueError naming the file, the scan and the problem, so that a broken
    configuration stops a run before any work, not half-way through.
    """
    if path:
        text, where = Path(path).read_text(), str(path)
    else:
        text, where = resources.files("candleflow").joinpath("config/scans.yaml").read_text(), "scans.yaml"
    document = yaml.safe_load(text) or {}
    entries = document.get("scans") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: expected a top-level 'scans:' list")
    scans = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) - {"name", "formula", "interval"}:
            raise ValueError(f"{where}: scan #{number} must have only name, formula and interval")
        name = str(entry.get("name", ""))
        if not SCAN_NAME.match(name):
            raise ValueError(f"{where}: scan #{number} has an invalid name {name!r} "
                             "(lower-case letters, digits and _, starting with a letter)")
        try:
            interval = check_interval(str(entry.get("interval", "1d")))
            compile_formula(str(entry.get("formula", "")))
        except ValueError as exc:
            raise ValueError(f"{where}: scan {name!r}: {exc}") from None
        scans.append(Scan(name=name, formula=str(entry["formula"]), interval=interval))
    if len({s.name for s in scans}) != len(scans):
        raise ValueError(f"{where}: scan names must be unique")
    return scans
