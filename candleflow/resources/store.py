"""The domain store as a Dagster resource."""

import dagster as dg
from pydantic import Field

from candleflow.store import CandleStore


class StoreResource(dg.ConfigurableResource):
    """SQLAlchemy URL of the domain store: ``sqlite:///PATH`` (default) or ``postgresql://...``."""

    url: str = Field(description="Database URL; give Postgres credentials through an EnvVar.")

    def open(self) -> CandleStore:
        store = CandleStore(self.url)
        store.create_schema()
        return store
