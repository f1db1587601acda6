"""Where this environment's console scripts are, and the store URL of a command: a file's
content or the settings' (``candleflow/settings.py``)."""

import sys
from pathlib import Path

from candleflow.settings import read_settings


def home_dir() -> Path:
    """``CANDLEFLOW_HOME`` (default ``./.candleflow``), resolved."""
    return read_settings().home.resolve()


def store_url(url_file: str | None = None) -> str:
    """The content of ``url_file`` if given, else the settings' domain store URL
    (CANDLEFLOW_STORE_URL, else the embedded SQLite file under CANDLEFLOW_HOME)."""
    if url_file is not None:
        return read_url_file(url_file)
    return read_settings().domain_store_url


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
