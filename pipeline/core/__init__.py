"""Foundations every layer stands on: the error classes and their one-line messages (`errors`),
what a stage declares (`stage`), atomic outputs (`atomic`), SHA-256 of files (`hashing`), the
network's geometry (`geometry`), charge clusters as connected components (`components`) and an
output folder one process writes at a time (`lock`).

Imports: nothing of the pipeline (the bottom layer; see `pipeline.LAYERS`).
"""
