"""The pipeline's stages as plain functions over a batch of symbols (no Dagster here).

Each stage reads its input from the store, writes its output to the store, and returns a
StageResult saying which symbols succeeded and why the others failed. A symbol that fails one
stage is left out of the later stages of the same run; its stored data stays as it was.
"""
