"""What the pipeline's Dagster steps share, kept out of ``candleflow.defs`` because it defines
nothing Dagster loads: the symbols partitions and run tags, the set-up of a step (store, context,
tracker), the reporting of a stage's outcome (batched materialization events, charts)."""
