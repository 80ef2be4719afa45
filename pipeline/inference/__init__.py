"""Labelling frames: the U-Net over full frames (`infer`, the `infer` stage), where it must run
(`sparse`), what runs it (`runtime`: torch or ONNX Runtime), and the classical reconstruction it
must beat (`classical`, the `classical` stage).

Imports: `core`, `config`, `io`, `calibration`, `results`, `network`, `tracking` (see
`pipeline.LAYERS`).
"""
