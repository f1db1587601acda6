"""The code location: the definitions of ``candleflow/defs`` (one folder per domain), loaded the way
dg loads a project's defs folder, with the deployment's resources.

``dagster dev -w workspace.yaml``, ``dagster job execute -m candleflow.definitions`` and ``dg``
(``dg check defs``, ``dg list defs``, ``dg dev``; ``[tool.dg]`` in pyproject.toml) all load this
module's ``defs``. The defs folder is named by its module rather than found through pyproject.toml
(``dg.load_from_defs_folder``): an installed package (``pip install .``, the image of
docs/deployment.md) has no pyproject.toml. Kept cheap to import: the multiprocess executor imports
this module again in every step process.
"""

import os
import warnings
from pathlib import Path

import dagster as dg

import candleflow.defs
from candleflow.resources.deployment import deployment_resources

# See docs/design.md. Both are read by Dagster at the moment it writes events:
# one ASSET_MATERIALIZATION_PLANNED event per asset per run instead of one per asset per partition
# (read in the process that creates the run: the CLI here; set it for webserver and daemon too),
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
# and per-partition materializations stored in batches (read in the step process).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")


def domain_definitions() -> dg.Definitions:
    """Every definition at the top level of a module under ``candleflow/defs``."""
    with warnings.catch_warnings():  # as load_from_defs_folder does: its loader uses preview APIs
        warnings.simplefilter("ignore", dg.PreviewWarning)
        tree = dg.ComponentTree.from_module(defs_module=candleflow.defs,
                                            project_root=Path(__file__).parents[1])
        return tree.build_defs()


defs = dg.Definitions.merge(domain_definitions(), dg.Definitions(resources=deployment_resources()))
