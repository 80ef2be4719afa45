"""Experiment tracking with MLflow: what every run records (`runs`) and the model registry, with the
links from runs to model versions (`registry`).

Imports: `core`, `config`, `network` (see `pipeline.LAYERS`).
"""
