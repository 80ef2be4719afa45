"""Each readout-artefact family and light, one at a time, through a model and the classical cuts
(pipeline/evaluation/artefact_families.py): is the artefact called artefact, and are the
particles beside it kept?

    python bench/bench_artefacts.py [--model ccd-unet-v3] [--frames 4] [--size 256]

Prints one JSON line per family and method: artefact pixel recall and precision, and the share
of the particles' pixels within 5 px of an artefact that keep a particle class.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from pipeline.evaluation.artefact_families import FAMILIES, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ccd-unet-v3")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            for method in (args.model, "classical"):
                found = measure(family, method, args.frames, args.size, args.seed, Path(tmp))
                print(json.dumps({"family": family, "method": method, **found}), flush=True)


if __name__ == "__main__":
    main()
