"""Experiment tracking with MLflow: what every run records (`runs`) and the model registry, with the
links from runs to model versions (`registry`).

MLflow's own INFO lines (the store's tables being created, a model version registered) are
silenced unless `MLFLOW_LOGGING_LEVEL` says otherwise: a command prints what it did, not its
bookkeeping. MLflow is imported only inside the functions that use it, after this.

Imports: `core`, `config`, `network` (see `pipeline.LAYERS`).
"""

import os

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
