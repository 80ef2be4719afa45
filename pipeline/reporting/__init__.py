"""What a person looks at: a map drawn over its frame and an activity's spectral fit (`view`, the
`plot` stage), each also attached to the MLflow run that made what it draws.

Imports: every layer below it; not `learning`, `inference`, `measurement` or `evaluation` (see
`pipeline.LAYERS`).
"""
