"""The measurement of a sample's tritium activity: counting statistics (`counting`), the spectral
model (`spectrum`), the detection efficiency (`efficiency`, the `efficiency` stage), the activity
with its interval and MDA (`estimate`), its systematics (`systematics`) and the `activity` stage
(`activity`).

Imports: every layer below it, `inference` included (the efficiency frames are mapped like the
data); not `learning` or `evaluation` (see `pipeline.LAYERS`).
"""
