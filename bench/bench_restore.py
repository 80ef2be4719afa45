"""What undoing the readout's artefacts costs (pipeline/calibration/restore.py): the CTI
measurement of a file and the per-frame restoration (pedestal jumps, trap columns, CTI), on
simulated frames of the default CCD and of the suite's artefact-rich one.

    python bench/bench_restore.py [--frames 4] [--size 1024]

Prints one JSON line per detector: seconds to measure the file's CTI, seconds per frame to
restore, what was found.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pipeline.calibration.frames import calibrated
from pipeline.calibration.restore import Restorer
from pipeline.config import load_config
from pipeline.simulation.simulate import simulate_file

ARTEFACT_RICH = {  # configs/default.yaml simulate.datasets.suite_artefacts, its readout part
    "artefacts.readout.cti.serial": 0.01,
    "artefacts.readout.cti.parallel": 0.005,
    "artefacts.readout.serial_hits.rate_per_frame": 8.0,
    "artefacts.readout.baseline.jumps_per_frame": 4.0,
    "artefacts.readout.trap_columns.number": 4,
    "artefacts.readout.glow.amplifier_e": 20.0,
    "artefacts.readout.glow.edge_e": 8.0,
}


def measure(name: str, overrides: dict, frames: int, size: int, folder: Path) -> dict:
    config = load_config(overrides={"detector.height": size, "detector.width": size, **overrides})
    path = folder / f"{name}.h5"
    simulate_file(config, path, frames, seed=3, progress=False)
    start = time.perf_counter()
    restorer = Restorer.for_file(path, config)
    measured_s = time.perf_counter() - start
    seconds, made = 0.0, 0
    with calibrated(path, config) as file:
        file.calibrate()
        for i, charge in enumerate(file.charges()):
            start = time.perf_counter()
            _, artefact = restorer(charge, file.noise_e(i))
            seconds += time.perf_counter() - start
            made += int(artefact.sum())
    return {
        "detector": name,
        "frames": frames,
        "size": size,
        "cti_measure_s": round(measured_s, 3),
        "restore_s_per_frame": round(seconds / frames, 3),
        "pixels_labelled_artefact": made,
        "found": restorer.notes(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in (("default", {}), ("artefact-rich readout", ARTEFACT_RICH)):
            found = measure(name, overrides, args.frames, args.size, Path(tmp))
            print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
