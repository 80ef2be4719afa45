"""Foundations every layer stands on: the error classes and their one-line messages (`errors`),
what a stage declares (`stage`),
atomic outputs (`atomic`), SHA-256 of files (`hashing`), the network's geometry (`geometry`) and
charge clusters as connected components (`components`).

Imports: nothing of the pipeline (the bottom layer; see `pipeline.LAYERS`).
"""
