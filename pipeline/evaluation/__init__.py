"""Scoring maps against truth: one detector side by side (`evaluate`, the `evaluate` stage) and the
generalisation suite, every method on every detector (`suite`, the `suite` stage).

Imports: every layer below it; not `learning`, `inference` or `measurement` (see
`pipeline.LAYERS`).
"""
