"""What a labelling of frames gives, whatever labelled them: the cluster catalogue (`clusters`),
map files and catalogues from any per-frame labeller (`maps`), the metrics as pure functions on
label arrays (`metrics`) and the plots for people (`plots`).

Imports: `core`, `config`, `io`, `calibration` (see `pipeline.LAYERS`).
"""
