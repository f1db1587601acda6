"""The domain store as a Dagster resource."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from candleflow.store import CandleStore


class StoreResource(dg.ConfigurableResource):
    """SQLAlchemy URL of the domain store: ``sqlite:///PATH`` (default) or ``postgresql://...``."""

    url: str = Field(description="Database URL; give Postgres credentials through an EnvVar.")

    @contextmanager
    def connected(self) -> Iterator[CandleStore]:
        """The store with its schema migrated to head; its connections closed on exit."""
        store = CandleStore(self.url)
        try:
            store.create_schema()
            yield store
        finally:
            store.dispose()
