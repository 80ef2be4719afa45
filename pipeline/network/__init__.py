"""The U-Net: its architecture and checkpoint format (`model`), where and in which precision it runs
(`device`), and the shipped models, found by name and listed (`shipped`, the `models` stage).

Imports: `core`, `config` (see `pipeline.LAYERS`); torch only where weights are read.
"""
