"""Environment variables candleflow reads, with their defaults (README.md, "Configuration"),
and where this environment's console scripts are."""

import os
import sys
from pathlib import Path


def home_dir() -> Path:
    """``CANDLEFLOW_HOME``, default ``./.candleflow``: where the embedded SQLite store lives."""
    return Path(os.environ.get("CANDLEFLOW_HOME", ".candleflow")).resolve()


def default_store_url() -> str:
    return f"sqlite:///{home_dir() / 'candleflow.db'}"


def store_url() -> str:
    """``CANDLEFLOW_STORE_URL`` if set, else the embedded SQLite file under CANDLEFLOW_HOME."""
    return os.environ.get("CANDLEFLOW_STORE_URL") or default_store_url()


def console_script(name: str) -> str:
    """Path of a console script (``dagster``, ``dagster-daemon``) of the running interpreter's
    environment, so that a subprocess runs the same installation without relying on PATH."""
    return str(Path(sys.executable).with_name(name))
