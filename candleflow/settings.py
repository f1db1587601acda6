"""Every ``CANDLEFLOW_*`` variable candleflow reads: its type, default and meaning, read and
validated in one place (``read_settings``).

The deployment (``CANDLEFLOW_DEPLOYMENT``) decides which resources these settings become
(``candleflow/resources/deployment.py``). ``python -m candleflow.settings`` prints the table of the
variables (README, "Configuration").
"""

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import exchange_calendars

from candleflow.formula.limits import SCAN_TIME_LIMIT_S
from candleflow.market.calendar import DEFAULT_START, ExchangeSessions
from candleflow.pipeline.chunks import DEFAULT_CHUNK_BARS
from candleflow.sources.folder import LAYOUT_NAMES, MAPPING_SUFFIXES, table_layout
from candleflow.sources.layouts import LayoutError

Deployment = Literal["local", "production"]
SourceKind = Literal["synthetic", "files"]
BaseInterval = Literal["1m", "1d"]
NewTickers = Literal["add", "ignore"]


class SettingsError(ValueError):
    """A variable with a value candleflow cannot use; the message names the variable."""


def _setting(variable: str, default, description: str, parse: Callable[[str], object] | None = None,
             secret: bool = False):
    """A field read from ``variable``; ``parse`` turns its text into the value (default: by the
    field's type) and raises ``ValueError`` with what was expected. A ``secret`` value (a URL
    with a password) is left out of the settings' repr."""
    return field(default=default, repr=not secret,
                 metadata={"variable": variable, "description": description, "parse": parse})


def _calendar_code(text: str) -> str:
    if text not in exchange_calendars.get_calendar_names(include_aliases=True):
        raise ValueError("an exchange-calendars code such as XNYS")
    return text


def _file_layout(text: str) -> str:
    if text in LAYOUT_NAMES:
        return text
    if not text.endswith(MAPPING_SUFFIXES):
        raise ValueError(f"one of {', '.join(LAYOUT_NAMES)}, or a .yaml mapping file")
    try:
        table_layout(text)
    except LayoutError as exc:
        raise ValueError(f"a usable mapping file ({exc})") from None
    return text


def _positive_integer(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("a positive integer")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError("a whole number (0 or more)")
    return int(text)


@dataclass(frozen=True)
class Settings:
    deployment: Deployment = _setting(
        "CANDLEFLOW_DEPLOYMENT", "local", "`local`: the embedded SQLite store unless "
        "CANDLEFLOW_STORE_URL is set; `production`: CANDLEFLOW_STORE_URL required")
    home: Path = _setting("CANDLEFLOW_HOME", Path(".candleflow"),
                          "folder of the embedded SQLite store and the readiness outbox")
    store_url: str = _setting("CANDLEFLOW_STORE_URL", "", "domain store, `sqlite:///PATH` or "
                              "`postgresql://user:pass@host/db`; empty: `sqlite:///$CANDLEFLOW_HOME/candleflow.db`", secret=True)
    source: SourceKind = _setting("CANDLEFLOW_SOURCE", "synthetic", "where candles come from: `synthetic` "
                                  "or `files` (CANDLEFLOW_LANDING_DIR)")
    landing_dir: str = _setting("CANDLEFLOW_LANDING_DIR", "", "landing folder of the files source")
    file_layout: str = _setting("CANDLEFLOW_FILE_LAYOUT", "candleflow", "layout of the landing folder's "
                                "files: `candleflow` (a file per symbol), `polygon-day` (a gzip CSV per "
                                "day, every ticker), `databento-ohlcv`, or the path of a YAML mapping file "
                                "(docs/candle-sources.md)", parse=_file_layout)
    new_tickers: NewTickers = _setting("CANDLEFLOW_NEW_TICKERS", "add", "symbols of landed files not in "
                                       "the universe: `add` them as partitions, or `ignore` them")
    base_interval: BaseInterval = _setting("CANDLEFLOW_BASE_INTERVAL", "1m",
                                           "`1m`, or `1d` for daily-only data")
    seed: int = _setting("CANDLEFLOW_SEED", 7, "seed of the synthetic source (and of `candleflow replay`, "
                         "`candleflow preload`)")
    indicators_file: str = _setting("CANDLEFLOW_INDICATORS_FILE", "",
                                    "YAML indicator spec; empty: the packaged config/indicators.yaml")
    scans_file: str = _setting("CANDLEFLOW_SCANS_FILE", "", "YAML scans; empty: the packaged config/scans.yaml")
    calendar: str = _setting("CANDLEFLOW_CALENDAR", "XNYS", "exchange-calendars code of the exchange",
                             parse=_calendar_code)
    extended_hours_bars: bool = _setting(
        "CANDLEFLOW_EXTENDED_HOURS_BARS", False, "`true`: intraday bars (and what is computed from them) "
        "include the extended hours, aligned to their start (XNYS 04:00); daily bars stay the regular "
        "session")
    calendar_start: date = _setting("CANDLEFLOW_CALENDAR_START", DEFAULT_START,
                                    "first day of the calendar: no data may be older")
    scan_time_limit_s: float = _setting("CANDLEFLOW_SCAN_TIME_LIMIT_S", SCAN_TIME_LIMIT_S,
                                        "wall-clock seconds one scan may take on one block of symbols")
    chunk_bars: int = _setting("CANDLEFLOW_CHUNK_BARS", DEFAULT_CHUNK_BARS, "base bars a run holds at "
                               "once (the shards running at once share them): a longer window runs in chunks "
                               "of as many sessions as hold that many bars of a step's symbols (at least one)", parse=_positive_integer)
    workers: int = _setting("CANDLEFLOW_WORKERS", 0, "worker processes of a universe run "
                            "(`market_data_universe`): its shards run at once; 0: one per core", parse=_count)
    celery_broker: str = _setting("CANDLEFLOW_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//",
                                  "Celery broker of `market_data_sharded` (RabbitMQ)", secret=True)
    celery_backend: str = _setting("CANDLEFLOW_CELERY_BACKEND", "rpc://", "Celery result backend "
                                   "(`rpc://`: results as broker messages to the run worker)", secret=True)
    celery_queue: str = _setting("CANDLEFLOW_CELERY_QUEUE", "candleflow",
                                 "the Celery queue every step of `market_data_sharded` goes to")
    #: The fields whose variable the environment set (not empty): resources take those through
    #: ``dg.EnvVar``, so that the UI shows the variable, not a baked value.
    from_environment: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @property
    def domain_store_url(self) -> str:
        """CANDLEFLOW_STORE_URL, else the embedded SQLite file under CANDLEFLOW_HOME."""
        return self.store_url or f"sqlite:///{self.home.resolve() / 'candleflow.db'}"

    def sessions(self) -> ExchangeSessions:
        return ExchangeSessions(self.calendar, self.calendar_start, self.extended_hours_bars)


def variable(name: str) -> str:
    """The environment variable of the ``Settings`` field ``name``."""
    return _FIELDS[name].metadata["variable"]


def read_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings of ``environ``; an unset or empty variable keeps its default. Raises
    ``SettingsError`` naming the first variable whose value is unusable."""
    values = {}
    for name, spec in _FIELDS.items():
        text = environ.get(spec.metadata["variable"], "")
        if text:
            values[name] = _parse(spec, text)
    settings = Settings(**values, from_environment=frozenset(values))
    if settings.deployment == "production" and not settings.store_url:
        raise SettingsError("CANDLEFLOW_STORE_URL must be set when CANDLEFLOW_DEPLOYMENT is production")
    if settings.source == "files" and not settings.landing_dir:
        raise SettingsError("CANDLEFLOW_LANDING_DIR must be set when CANDLEFLOW_SOURCE is files")
    return settings


def configuration_table() -> str:
    """The variables as a Markdown table: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for spec in _FIELDS.values():
        default = f"`{_shown(spec.default)}`" if spec.default != "" else ""
        rows.append(f"| `{spec.metadata['variable']}` | {default} | {spec.metadata['description']} |")
    return "\n".join(rows)


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value.isoformat() if isinstance(value, date) else f"{value:g}" if isinstance(value, float) else str(value)


def _parse(spec: dataclasses.Field, text: str):
    kind = _TYPES[spec.name]
    parse = spec.metadata["parse"] or _PARSERS.get(kind) or _choice(typing.get_args(kind))
    try:
        return parse(text)
    except ValueError as exc:
        raise SettingsError(f"{spec.metadata['variable']} must be {exc}, got {text!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("an integer") from None


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("a positive number of seconds")
    return seconds


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError("a date (YYYY-MM-DD)") from None


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return text

    return parse


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError("true or false")
    return text.lower() in ("true", "1")


_PARSERS: dict[type, Callable[[str], object]] = {
    str: str, bool: _boolean, int: _integer, float: _positive_seconds, date: _iso_date, Path: Path}
_FIELDS = {spec.name: spec for spec in dataclasses.fields(Settings) if "variable" in spec.metadata}
_TYPES = typing.get_type_hints(Settings)


if __name__ == "__main__":
    print(configuration_table())
