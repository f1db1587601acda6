"""Settings read once from the environment, and the resources each deployment makes of them."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from candleflow import cli
from candleflow.formula.limits import SCAN_TIME_LIMIT_S
from candleflow.dagster_steps.celery_executor import executor_config
from candleflow.resources import LandingFolderCandles, PipelineSettings, StoreResource, SyntheticCandles
from candleflow.resources.deployment import deployment_resources
from candleflow.settings import Settings, SettingsError, configuration_table, read_settings

#: One value of each variable, and the setting it becomes.
EVERY_VARIABLE = {
    "CANDLEFLOW_DEPLOYMENT": ("production", "deployment", "production"),
    "CANDLEFLOW_HOME": ("/srv/candleflow", "home", Path("/srv/candleflow")),
    "CANDLEFLOW_STORE_URL": ("postgresql://u:p@db/candleflow", "store_url", "postgresql://u:p@db/candleflow"),
    "CANDLEFLOW_SOURCE": ("files", "source", "files"),
    "CANDLEFLOW_LANDING_DIR": ("/srv/landing", "landing_dir", "/srv/landing"),
    "CANDLEFLOW_FILE_LAYOUT": ("polygon-day", "file_layout", "polygon-day"),
    "CANDLEFLOW_NEW_TICKERS": ("ignore", "new_tickers", "ignore"),
    "CANDLEFLOW_BASE_INTERVAL": ("1d", "base_interval", "1d"),
    "CANDLEFLOW_SEED": ("11", "seed", 11),
    "CANDLEFLOW_INDICATORS_FILE": ("ind.yaml", "indicators_file", "ind.yaml"),
    "CANDLEFLOW_SCANS_FILE": ("scans.yaml", "scans_file", "scans.yaml"),
    "CANDLEFLOW_CALENDAR": ("XLON", "calendar", "XLON"),
    "CANDLEFLOW_EXTENDED_HOURS_BARS": ("true", "extended_hours_bars", True),
    "CANDLEFLOW_CALENDAR_START": ("2020-01-02", "calendar_start", date(2020, 1, 2)),
    "CANDLEFLOW_SCAN_TIME_LIMIT_S": ("2.5", "scan_time_limit_s", 2.5),
    "CANDLEFLOW_CHUNK_BARS": ("250000", "chunk_bars", 250_000),
    "CANDLEFLOW_WORKERS": ("4", "workers", 4),
    "CANDLEFLOW_CELERY_BROKER": ("amqp://u:p@mq:5672//", "celery_broker", "amqp://u:p@mq:5672//"),
    "CANDLEFLOW_CELERY_BACKEND": ("redis://cache/0", "celery_backend", "redis://cache/0"),
    "CANDLEFLOW_CELERY_QUEUE": ("shards", "celery_queue", "shards"),
}


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = read_settings({"PATH": "/bin", "CANDLEFLOW_SEED": ""})  # empty = unset
    assert settings == Settings()
    assert (settings.deployment, settings.source, settings.base_interval, settings.seed) == ("local", "synthetic",
                                                                                             "1m", 7)
    assert (settings.calendar, settings.calendar_start) == ("XNYS", date(1990, 1, 1))
    assert settings.scan_time_limit_s == SCAN_TIME_LIMIT_S
    assert (settings.celery_broker, settings.celery_backend, settings.celery_queue) == (
        "amqp://guest:guest@127.0.0.1:5672//", "rpc://", "candleflow")
    assert settings.domain_store_url == f"sqlite:///{tmp_path / '.candleflow' / 'candleflow.db'}"
    assert settings.from_environment == frozenset()


def test_every_variable_is_read():
    settings = read_settings({variable: text for variable, (text, _, _) in EVERY_VARIABLE.items()})
    assert {name: getattr(settings, name) for _, name, _ in EVERY_VARIABLE.values()} == {
        name: value for _, name, value in EVERY_VARIABLE.values()}
    assert settings.from_environment == {name for _, name, _ in EVERY_VARIABLE.values()}
    assert settings.domain_store_url == "postgresql://u:p@db/candleflow"
    assert "u:p@" not in repr(settings)  # URLs with a password stay out of logs
    table = configuration_table()
    assert [line.split("`")[1] for line in table.splitlines()[2:]] == list(EVERY_VARIABLE)


@pytest.mark.parametrize(("variable", "text", "error"), [
    ("CANDLEFLOW_SEED", "x", "CANDLEFLOW_SEED must be an integer, got 'x'"),
    ("CANDLEFLOW_SEED", "7.5", "CANDLEFLOW_SEED must be an integer, got '7.5'"),
    ("CANDLEFLOW_DEPLOYMENT", "prod", "CANDLEFLOW_DEPLOYMENT must be one of local, production, got 'prod'"),
    ("CANDLEFLOW_SOURCE", "ftp", "CANDLEFLOW_SOURCE must be one of synthetic, files, got 'ftp'"),
    ("CANDLEFLOW_BASE_INTERVAL", "5m", "CANDLEFLOW_BASE_INTERVAL must be one of 1m, 1d, got '5m'"),
    ("CANDLEFLOW_FILE_LAYOUT", "polygon", "CANDLEFLOW_FILE_LAYOUT must be one of candleflow, polygon-day, "
                                          "databento-ohlcv, or a .yaml mapping file, got 'polygon'"),
    ("CANDLEFLOW_FILE_LAYOUT", "/nowhere/map.yaml", "CANDLEFLOW_FILE_LAYOUT must be a usable mapping file "
     "(map.yaml: cannot read the mapping file (No such file or directory)), got '/nowhere/map.yaml'"),
    ("CANDLEFLOW_EXTENDED_HOURS_BARS", "yes", "CANDLEFLOW_EXTENDED_HOURS_BARS must be true or false, got 'yes'"),
    ("CANDLEFLOW_CHUNK_BARS", "0", "CANDLEFLOW_CHUNK_BARS must be a positive integer, got '0'"),
    ("CANDLEFLOW_CHUNK_BARS", "1e6", "CANDLEFLOW_CHUNK_BARS must be a positive integer, got '1e6'"),
    ("CANDLEFLOW_WORKERS", "-1", "CANDLEFLOW_WORKERS must be a whole number (0 or more), got '-1'"),
    ("CANDLEFLOW_NEW_TICKERS", "keep", "CANDLEFLOW_NEW_TICKERS must be one of add, ignore, got 'keep'"),
    ("CANDLEFLOW_CALENDAR", "NOPE", "CANDLEFLOW_CALENDAR must be an exchange-calendars code such as XNYS, "
                                    "got 'NOPE'"),
    ("CANDLEFLOW_CALENDAR_START", "2020-02-30",
     "CANDLEFLOW_CALENDAR_START must be a date (YYYY-MM-DD), got '2020-02-30'"),
    ("CANDLEFLOW_SCAN_TIME_LIMIT_S", "0",
     "CANDLEFLOW_SCAN_TIME_LIMIT_S must be a positive number of seconds, got '0'"),
    ("CANDLEFLOW_SCAN_TIME_LIMIT_S", "inf",
     "CANDLEFLOW_SCAN_TIME_LIMIT_S must be a positive number of seconds, got 'inf'"),
])
def test_a_bad_value_names_its_variable(variable, text, error):
    with pytest.raises(SettingsError) as raised:
        read_settings({variable: text})
    assert str(raised.value) == error


def test_production_needs_a_store_url_and_files_a_landing_dir():
    with pytest.raises(SettingsError) as raised:
        read_settings({"CANDLEFLOW_DEPLOYMENT": "production"})
    assert str(raised.value) == "CANDLEFLOW_STORE_URL must be set when CANDLEFLOW_DEPLOYMENT is production"
    with pytest.raises(SettingsError) as raised:
        read_settings({"CANDLEFLOW_SOURCE": "files"})
    assert str(raised.value) == "CANDLEFLOW_LANDING_DIR must be set when CANDLEFLOW_SOURCE is files"


def test_local_deployment_keeps_the_embedded_store_and_defaults(tmp_path):
    resources = deployment_resources(read_settings({"CANDLEFLOW_HOME": str(tmp_path)}))
    assert set(resources) == {"store", "candle_source", "settings"}
    assert resources["store"] == StoreResource(url=f"sqlite:///{tmp_path / 'candleflow.db'}")
    assert not isinstance(resources["store"].url, dg.EnvVar)
    assert resources["candle_source"] == SyntheticCandles(seed=7, base_interval="1m")
    assert resources["settings"] == PipelineSettings()


def test_variables_reach_resources_as_env_vars(monkeypatch, tmp_path):
    environ = {"CANDLEFLOW_STORE_URL": f"sqlite:///{tmp_path / 'other.db'}", "CANDLEFLOW_SEED": "11",
               "CANDLEFLOW_CALENDAR_START": "2020-01-02", "CANDLEFLOW_SCAN_TIME_LIMIT_S": "2.5"}
    resources = deployment_resources(read_settings(environ))
    store, source, settings = resources["store"], resources["candle_source"], resources["settings"]
    assert isinstance(store.url, dg.EnvVar) and store.url.env_var_name == "CANDLEFLOW_STORE_URL"
    assert source.seed.env_var_name == "CANDLEFLOW_SEED"
    assert isinstance(settings.calendar_start, dg.EnvVar)
    assert settings.scan_time_limit_s == 2.5  # Dagster has no float EnvVar
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert store.process_config_and_initialize().url == environ["CANDLEFLOW_STORE_URL"]
    assert source.process_config_and_initialize().seed == 11
    launched = settings.process_config_and_initialize()
    assert (launched.calendar_start, launched.calendar, launched.scan_time_limit_s) == ("2020-01-02", "XNYS", 2.5)
    assert launched.sessions().first_session == date(2020, 1, 2)


def test_production_deployment_takes_the_store_from_its_variable():
    resources = deployment_resources(read_settings({
        "CANDLEFLOW_DEPLOYMENT": "production", "CANDLEFLOW_STORE_URL": "postgresql://u:p@db/candleflow",
        "CANDLEFLOW_SOURCE": "files", "CANDLEFLOW_LANDING_DIR": "/srv/landing"}))
    assert isinstance(resources["store"].url, dg.EnvVar)
    assert resources["store"].url.env_var_name == "CANDLEFLOW_STORE_URL"
    source = resources["candle_source"]
    assert isinstance(source, LandingFolderCandles)
    assert isinstance(source.landing_dir, dg.EnvVar) and source.landing_dir.env_var_name == "CANDLEFLOW_LANDING_DIR"
    assert source.base_interval == "1m"


def test_celery_executor_takes_broker_and_backend_from_their_variables():
    assert executor_config(read_settings({})) == {
        "broker": "amqp://guest:guest@127.0.0.1:5672//", "backend": "rpc://",
        "config_source": {"task_default_queue": "candleflow"}}
    assert executor_config(read_settings({"CANDLEFLOW_CELERY_BROKER": "amqp://u:p@mq//",
                                          "CANDLEFLOW_CELERY_QUEUE": "shards"})) == {
        "broker": {"env": "CANDLEFLOW_CELERY_BROKER"}, "backend": "rpc://",
        "config_source": {"task_default_queue": "shards"}}


def test_the_cli_reports_a_bad_setting(monkeypatch, capsys):
    monkeypatch.setenv("CANDLEFLOW_SEED", "x")
    assert cli.main(["signals"]) == 2
    assert capsys.readouterr().err == "candleflow: error: CANDLEFLOW_SEED must be an integer, got 'x'\n"


def test_the_readme_shows_the_settings_table_as_the_code_declares_it():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert configuration_table().strip() in readme
