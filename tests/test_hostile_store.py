"""Hostile-user findings on the domain store (issue 11): chunked Arrow columns, passwords in messages."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sqlalchemy.exc import OperationalError

from candleflow.dagster_steps.partitions import SYMBOLS_PARTITIONS_NAME, partition_range_tags
from candleflow.definitions import defs
from candleflow.market.frames import as_candle_frame, empty_candles
from candleflow.market.indicators import _long_frame
from candleflow.resources import StoreResource
from candleflow.store import CandleStore
from candleflow.store.store import masked_url
from tests.pipeline_fixtures import materialized, run_pipeline, sqlite_instance

T0 = 1_709_908_200


def indicator_values(interval: str, symbols: list[str], name: str, n: int) -> pd.DataFrame:
    """Indicator values as ``compute_indicators`` returns them: categorical symbol, interval, name."""
    codes = np.repeat(np.arange(len(symbols), dtype=np.int8), n)
    return _long_frame(interval, symbols, codes, np.tile(T0 + 300 * np.arange(n), len(symbols)),
                       [name], np.zeros(len(codes), np.int8), np.arange(len(codes)) + 0.25)


def test_indicators_after_an_interval_without_history_are_stored_exactly(store):
    """The pipeline concatenates one frame per interval; an interval without history gives an
    empty one first, and the string columns of the result are chunked with an empty first chunk."""
    empty_daily = indicator_values("1d", [], "sma_20", 0)
    values = pd.concat([empty_daily, indicator_values("5m", ["AAA", "BBB", "CCC"], "sma_20", 40),
                        indicator_values("5m", ["AAA", "BBB"], "rsi_14", 30)], ignore_index=True)
    assert store.write_indicators(values) == 180
    stored = store.read_indicators(["AAA", "BBB", "CCC"], "5m")
    expected = values.astype({"symbol": "str", "interval": "str", "name": "str"})
    expected = expected.sort_values(["symbol", "name", "bar_start"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, expected)


def test_candles_concatenated_after_an_empty_frame_are_stored_exactly(store):
    fresh = pd.DataFrame({
        "symbol": pd.Categorical(np.repeat(["AAA", "BBB"], 20)),
        "bar_start": np.tile(T0 + 60 * np.arange(20), 2),
        "open": 10.0, "high": 11.0, "low": 9.0, "close": np.arange(40) + 0.5, "volume": 100.0,
        "minutes": 1, "complete": True,
    })
    frame = as_candle_frame(pd.concat([empty_candles(), fresh], ignore_index=True))
    assert store.write_candles(frame, "1m") == 40
    pd.testing.assert_frame_equal(store.read_candles(["AAA", "BBB"], "1m"), frame)


SECRET = "S3cretPW"


@pytest.mark.parametrize("url,shown", [
    ("postgresql://postgres:S3cretPW@db1:5432/candleflow", "postgresql://postgres:***@db1:5432/candleflow"),
    ("postgresq://postgres:S3cretPW@host/db", "postgresq://postgres:***@host/db"),
    ("amqp://candleflow:S3cretPW@mq1:5672//", "amqp://candleflow:***@mq1:5672//"),
    # SQLAlchemy cannot parse these: a port that is not a number, no "//", an "@" in the password
    ("postgresql://postgres:S3cretPW@db1:port/candleflow", "postgresql://postgres:***@db1:port/candleflow"),
    ("postgres:S3cretPW@db1/candleflow", "postgres:***@db1/candleflow"),
    ("postgresql://postgres:S3c@retPW@db1/candleflow", "postgresql://postgres:***@db1/candleflow"),
    ("sqlite:////var/lib/candleflow/store.db", "sqlite:////var/lib/candleflow/store.db"),
    ("postgresql://postgres@127.0.0.1:5432/candleflow", "postgresql://postgres@127.0.0.1:5432/candleflow"),
])
def test_masked_url_hides_the_password(url, shown):
    assert masked_url(url) == shown


def test_an_unsupported_store_url_is_named_by_its_scheme_without_the_password():
    with pytest.raises(ValueError) as error:
        CandleStore("postgresq://postgres:S3cretPW@host/db")
    assert str(error.value) == ("unsupported store URL scheme 'postgresq' in 'postgresq://postgres:***@host/db': "
                                "use sqlite:///PATH or postgresql://...")


def test_a_password_with_a_plain_at_sign_is_refused_before_connecting():
    """Unescaped, the rest of the password would become the host name, which the driver prints."""
    with pytest.raises(ValueError) as error:
        CandleStore("postgresql://postgres:S3c@retPW@127.0.0.1/db")
    assert str(error.value) == ("malformed store URL 'postgresql+psycopg2://postgres:***@127.0.0.1/db': "
                                "write an '@' of the user name or password as %40")


def test_a_refused_connection_is_reported_without_the_password():
    store = CandleStore(f"postgresql://postgres:{SECRET}@127.0.0.1:5432/candleflow_no_such_database")
    with pytest.raises(OperationalError) as error:
        store.create_schema()
    store.dispose()
    assert 'database "candleflow_no_such_database" does not exist' in str(error.value)
    assert SECRET not in str(error.value)


def test_a_run_on_an_unsupported_store_url_keeps_the_password_out_of_dagster(tmp_path, monkeypatch):
    """The run fails; nothing in its run record or event log holds the password."""
    url = f"postgresq://postgres:{SECRET}@host/db"
    monkeypatch.setenv("CANDLEFLOW_STORE_URL", url)
    with sqlite_instance(tmp_path) as instance:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, ["AAA"])
        result = defs.resolve_job_def("market_data").execute_in_process(
            instance=instance, tags=partition_range_tags(["AAA"]), raise_on_error=False,
            resources={"store": StoreResource(url=dg.EnvVar("CANDLEFLOW_STORE_URL"))})
        assert not result.success
        logged = [str(entry) for entry in instance.all_logs(result.run_id)]
        stored_run = str(instance.get_run_by_id(result.run_id))
    assert any("unsupported store URL scheme 'postgresq' in 'postgresq://postgres:***@host/db'" in line
               for line in logged)
    assert SECRET not in stored_run and not [line for line in logged if SECRET in line]


def test_a_universe_run_on_a_fresh_postgres_store_stores_its_indicators(tmp_path, postgres_url):
    """No preloaded history: the 1d interval has no bars, so its indicator frame is empty."""
    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    with sqlite_instance(tmp_path) as instance:
        result = run_pipeline(instance, postgres_url, symbols)
        assert result.success
        assert materialized(instance, "indicators") == set(symbols)
    store = CandleStore(postgres_url)
    values = store.read_indicators(symbols, "5m")
    store.dispose()
    assert set(values["symbol"]) == set(symbols) and set(values["interval"]) == {"5m"}
    assert set(values["name"]) == {"sma_20", "ema_20", "rsi_14", "vwap"} and values["value"].notna().all()
