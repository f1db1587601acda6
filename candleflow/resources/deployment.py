"""The resources of a deployment (``CANDLEFLOW_DEPLOYMENT``), built from the settings.

As in Dagster's project_fully_featured and hooli-data-eng-pipelines, each deployment names how it
gets its resources; here only the store differs: ``local`` keeps it in the embedded SQLite file
unless CANDLEFLOW_STORE_URL is set, ``production`` always takes it from CANDLEFLOW_STORE_URL
(``read_settings`` refuses a production deployment without it). A value the environment sets
reaches a resource as ``dg.EnvVar``: the UI shows the variable, not the value (a password stays
out of it), and Dagster resolves it where a run launches; an unset one is the default.
"""

from collections.abc import Callable
from datetime import date

import dagster as dg

from candleflow.resources.settings import PipelineSettings
from candleflow.resources.sources import CandleSourceResource, LandingFolderCandles, SyntheticCandles
from candleflow.resources.store import StoreResource
from candleflow.settings import Deployment, Settings, read_settings, variable

#: The settings ``PipelineSettings`` takes, under the same names.
PIPELINE_SETTINGS = ("indicators_file", "scans_file", "calendar", "calendar_start", "extended_hours_bars",
                     "scan_time_limit_s", "chunk_bars")


def launch_value(settings: Settings, name: str):
    """What a resource field gets for the setting ``name``: ``dg.EnvVar`` (``dg.EnvVar.int`` for
    an integer) of its variable if the environment set it, else the default. Dagster has no float
    or boolean ``EnvVar``: such a value is itself."""
    value = getattr(settings, name)
    if name not in settings.from_environment or isinstance(value, float | bool):
        return value.isoformat() if isinstance(value, date) else value
    return dg.EnvVar.int(variable(name)) if isinstance(value, int) else dg.EnvVar(variable(name))


def store_of_url_variable(settings: Settings) -> StoreResource:
    """The store at CANDLEFLOW_STORE_URL, as ``dg.EnvVar``."""
    return StoreResource(url=launch_value(settings, "store_url"))


def local_store(settings: Settings) -> StoreResource:
    """The store at CANDLEFLOW_STORE_URL if set, else the embedded SQLite file."""
    return store_of_url_variable(settings) if settings.store_url else StoreResource(url=settings.domain_store_url)


STORES: dict[Deployment, Callable[[Settings], StoreResource]] = {"local": local_store,
                                                                  "production": store_of_url_variable}


def candle_source(settings: Settings) -> CandleSourceResource:
    """``CANDLEFLOW_SOURCE``: ``synthetic`` (default) or ``files`` (``CANDLEFLOW_LANDING_DIR``)."""
    base_interval = launch_value(settings, "base_interval")
    if settings.source == "files":
        return LandingFolderCandles(landing_dir=launch_value(settings, "landing_dir"), base_interval=base_interval,
                                    layout=launch_value(settings, "file_layout"),
                                    new_tickers=launch_value(settings, "new_tickers"))
    return SyntheticCandles(seed=launch_value(settings, "seed"), base_interval=base_interval)


def deployment_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """The ``store``, ``candle_source`` and ``settings`` resources every definition uses, of the
    environment's settings unless ``settings`` are given."""
    settings = settings or read_settings()
    return {
        "store": STORES[settings.deployment](settings),
        "candle_source": candle_source(settings),
        "settings": PipelineSettings(**{name: launch_value(settings, name) for name in PIPELINE_SETTINGS}),
    }
