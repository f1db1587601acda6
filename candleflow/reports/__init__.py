"""Pictures of what the store holds, for people (no Dagster)."""
