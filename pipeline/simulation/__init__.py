"""The detector's physics and the simulator: particle sources and charge transport in silicon
(`physics`), charge from track segments to pixels (`charge`) and frames with per-pixel truth
(`simulate`, the `simulate` stage).

Imports: `core`, `config`, `io` (see `pipeline.LAYERS`).
"""
