"""Training the U-Net: augmentation (`augment`), tiles of frame files (`tiles`), streamed simulated
tiles (`stream`), the data loaders (`data`), the training loop (`train`, the `train` stage) and
the shipped model made of a run (`export`, the `export` stage).

Imports: every layer below it: `core`, `config`, `io`, `simulation`, `calibration`, `results`,
`network`, `tracking` (see `pipeline.LAYERS`).
"""
