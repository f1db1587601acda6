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


def store_url(url_file: str | None = None) -> str:
    """The content of ``url_file`` if given, else ``CANDLEFLOW_STORE_URL`` if set, else the
    embedded SQLite file under CANDLEFLOW_HOME."""
    if url_file is not None:
        return read_url_file(url_file)
    return os.environ.get("CANDLEFLOW_STORE_URL") or default_store_url()


def read_url_file(path: str) -> str:
    """The URL kept in the file ``path`` (its content, stripped), so that a password stays out of
    the process arguments. Errors name the file, never its content; ``path`` is shown masked like a
    URL, in case a URL was given instead of a file."""
    from candleflow.store.store import masked_url  # lazy: the store pulls in pandas and SQLAlchemy

    try:
        url = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the store URL file {masked_url(path)}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"cannot read the store URL file {masked_url(path)}: not UTF-8 text") from None
    if not url:
        raise ValueError(f"the store URL file {masked_url(path)} is empty")
    return url


def console_script(name: str) -> str:
    """Path of a console script (``dagster``, ``dagster-daemon``) of the running interpreter's
    environment, so that a subprocess runs the same installation without relying on PATH."""
    return str(Path(sys.executable).with_name(name))
