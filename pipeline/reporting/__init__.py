"""What a person looks at: a map drawn over its frame and an activity's spectral fit (`view`, the
`plot` stage), each also attached to the MLflow run that made what it draws; the headline
numbers of the results in words (`headline`, the `headline` stage: the report's landing page).

Imports: every layer below it (see `pipeline.LAYERS`).
"""
