"""Finds radioactive-decay tracks in CCD and pixel-detector images with a U-Net.

The package is layered; each package's docstring says what it owns. `LAYERS` lists them from the
bottom up: a module may import from its own package and from packages in rows below its own,
never from its row or above (tests/test_layers.py checks every import, function-level ones
included). The top row, "command line", is the modules at the package's top level: `cli` parses,
`commands` finds each stage's declaration (beside its function), `paths` checks the files a stage
reads and writes.
"""

__version__ = "0.1.0"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),  # errors, atomic outputs, hashes, geometry, connected components
    ("config",),  # the one config system
    ("io",),  # frame and map files: HDF5, ROOT, FITS
    ("simulation", "calibration"),  # the detector's physics; raw frames to electrons
    ("results",),  # catalogues, maps, metrics, plots
    ("network",),  # the U-Net, its checkpoints, shipped models
    ("tracking",),  # MLflow runs and the model registry
    ("learning", "inference"),  # training; labelling frames (U-Net and classical)
    ("measurement", "evaluation"),  # the activity; scores against truth
    ("reporting",),  # what a person looks at: plots, the headline numbers
    ("command line",),  # cli, commands, paths, __main__
)
