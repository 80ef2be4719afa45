"""Raw frames to electrons: pedestal, gain, noise and hot pixels (`calibrate`, `gain`,
`hot_pixels`), and the calibrated frames of a file, the one way every stage reads them (`frames`).

Imports: `core`, `config`, `io` (see `pipeline.LAYERS`).
"""
