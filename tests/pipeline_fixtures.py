"""Helpers shared by the Dagster-level tests: instances on SQLite or Postgres, runs over ranges."""

from datetime import date

import dagster as dg
import pandas as pd

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags
from candleflow.definitions import defs
from candleflow.market.calendar import ExchangeSessions
from candleflow.pipeline.history import preload_daily_history
from candleflow.resources import PipelineSettings, StoreResource, SyntheticCandles
from candleflow.store import CandleStore
from candleflow.tracking.queries import list_tasks

SESSION = date(2024, 3, 8)
PREVIOUS_SESSION = date(2024, 3, 7)
ASSETS = ("raw_candles", "derived_bars", "indicators", "scan_signals")
#: The store tables a run writes, with the keys their rows are sorted by for comparison.
TABLES = {"candles": ["symbol", "interval", "bar_start"],
          "indicator_values": ["symbol", "interval", "name", "bar_start"],
          "signals": ["scan", "symbol", "interval", "bar_start"]}


def statuses(store: CandleStore, domain: str) -> dict[str, tuple[str, int]]:
    """Status and attempts of each partition's tracking row in ``domain``."""
    return {t["partition_key"]: (t["status"], t["attempts"])
            for t in list_tasks(store.engine, domain, limit=1000)["tasks"]}


def table(store: CandleStore, name: str) -> pd.DataFrame:
    """A whole store table, sorted by its keys."""
    with store.engine.connect() as conn:
        frame = pd.read_sql_table(name, conn)
    return frame.sort_values(TABLES[name]).reset_index(drop=True)


def sqlite_instance(tmp_path):
    """A test instance on SQLite with candleflow's batching event log storage."""
    home = tmp_path / "dagster"
    home.mkdir(exist_ok=True)
    return dg.instance_for_test(temp_dir=str(home), overrides=sqlite_instance_overrides(tmp_path))


def sqlite_instance_overrides(tmp_path) -> dict:
    return {"event_log_storage": {"module": "candleflow.instance.sqlite_event_log",
                                  "class": "BatchingSqliteEventLogStorage",
                                  "config": {"base_dir": str(tmp_path / "dagster" / "history" / "runs")}}}


def postgres_instance_overrides(database: str) -> dict:
    return {"storage": {"postgres": {
        "postgres_url": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"}}}


def prepared_store(url: str, symbols, history: int = 300) -> CandleStore:
    store = CandleStore(url)
    store.create_schema()
    preload_daily_history(store, ExchangeSessions(), symbols, history, seed=7, through=PREVIOUS_SESSION)
    return store


def run_pipeline(instance, store_url: str, symbols, source=None, session: date = SESSION,
                 raise_on_error: bool = True, settings: PipelineSettings | None = None):
    """One run of the market_data job over ``symbols`` as a partition range, in process."""
    known = set(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))
    instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, [s for s in symbols if s not in known])
    job = defs.resolve_job_def("market_data")
    return job.execute_in_process(
        instance=instance,
        tags=partition_range_tags(list(symbols)),
        run_config={"ops": {"market_data_pipeline": {"config": {"start": str(session), "end": str(session)}}}},
        resources={"store": StoreResource(url=store_url), "candle_source": source or SyntheticCandles(seed=7),
                   "settings": settings or PipelineSettings()},
        raise_on_error=raise_on_error,
    )


def materialized(instance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey(asset)))
