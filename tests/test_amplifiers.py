"""Multi-amplifier files: the HDUs of one exposure are amplifiers (own gain, noise and hot
pixels, one live time); HDUs that started at different times are exposures."""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.calibration import calibrate
from pipeline.commands import settings_of
from pipeline.config import load_config
from pipeline.core.errors import CalibrationError, FrameFileError
from pipeline.io import open_frames
from pipeline.measurement import activity
from pipeline.results.clusters import empty_catalogue, write_catalogue

ROWS, COLS = 64, 96
GAINS_E_PER_ADU = (2.0, 4.0, 1.0, 8.0)  # GAIN of CCD_A..D, electrons per ADU
NOISE_E = (0.2, 0.3, 0.25, 0.5)
HOT_COLUMN = 10  # hot in CCD_A only
BLOB = (slice(30, 33), slice(50, 53))  # 9 pixels of 100 e- each, in CCD_C only
PEDESTAL_ADU = 1000.0


def _amplifier(index: int, rng: np.random.Generator) -> fits.ImageHDU:
    charge = rng.normal(0.0, NOISE_E[index], (ROWS, COLS))
    if index == 0:
        charge[:, HOT_COLUMN] += 5.0
    if index == 2:
        charge[BLOB] += 100.0
    adu = PEDESTAL_ADU + 100.0 * index + charge / GAINS_E_PER_ADU[index]
    header = fits.Header({"GAIN": GAINS_E_PER_ADU[index], "RDNOISE": NOISE_E[index]})
    return fits.ImageHDU(adu.astype(np.float32), header=header, name=f"CCD_{'ABCD'[index]}")


def damic_like(path: Path, starts: list[str] | None = None) -> Path:
    """One 500 s exposure read by four amplifiers, as a DAMIC-M file: EXPOSURE in the primary
    header, one image HDU per amplifier (`starts`: a DATE-OBS per HDU)."""
    rng = np.random.default_rng(4)
    hdus = [_amplifier(i, rng) for i in range(4)]
    for hdu, start in zip(hdus, starts or [], strict=False):
        hdu.header["DATE-OBS"] = start
    primary = fits.PrimaryHDU(header=fits.Header({"EXPOSURE": 500}))
    fits.HDUList([primary, *hdus]).writeto(path)
    return path


def _io(**fits_keys):
    io = load_config().io
    return io.model_copy(update={"fits": io.fits.model_copy(update=fits_keys)})


def test_the_hdus_of_one_exposure_are_its_amplifiers(tmp_path):
    with open_frames(damic_like(tmp_path / "ccd.fits"), _io()) as ff:
        assert ff.shape == (4, ROWS, COLS) and ff.amplifiers == 4 and ff.n_exposures == 1
        gains = [a["gain_adu_per_e"] for a in ff.amplifier_attrs]
        assert gains == pytest.approx([1 / g for g in GAINS_E_PER_ADU])
        assert [a["exposure_s"] for a in ff.amplifier_attrs] == [500] * 4
        assert ff.sources["hdus"].startswith("4 amplifiers: HDUs CCD_A, CCD_B, CCD_C, CCD_D")


def test_each_amplifier_is_calibrated_with_its_own_gain_and_hot_pixels(tmp_path):
    config = load_config()
    with open_frames(damic_like(tmp_path / "ccd.fits"), _io()) as ff:
        run = calibrate.calibrate_file(ff, config)
        charges = [calibrate.frame_charge(ff.read("frames", i), run, i) for i in range(4)]
    assert run.amplifiers == 4
    assert [f.noise_e for f in run.frames] == pytest.approx(NOISE_E, rel=0.1)
    assert charges[2][BLOB].sum() == pytest.approx(900.0, rel=0.02)  # CCD_C's gain, in e-
    # one exposure: no hot pixels can be told from tracks, only columns, each amplifier its own
    assert run.mask_of(0)[:, HOT_COLUMN].all() and run.mask_of(0).sum() == ROWS
    assert not any(run.mask_of(i).any() for i in (1, 2, 3))
    with pytest.raises(ValueError, match="mask_of"):
        run.hot_mask  # noqa: B018


def test_hot_pixels_of_an_amplifier_are_found_across_its_exposures_only():
    rng = np.random.default_rng(2)
    frames = rng.normal(100.0, 2.0, (6, 32, 32))  # 3 exposures x 2 amplifiers
    frames[1::2, 5, 7] += 40.0  # hot in amplifier 1, in every exposure
    frames[0, 20, 20] += 40.0  # a track in one exposure of amplifier 0
    amps = [{"gain_adu_per_e": 1.0}, {"gain_adu_per_e": 2.0}]
    run = calibrate.calibrate_run(frames, {}, load_config().calibrate, 3.75, None, amps)
    assert run.gains == [1.0, 2.0] and [f.gain_adu_per_e for f in run.frames] == [1, 2] * 3
    assert np.flatnonzero(run.mask_of(1)).tolist() == [5 * 32 + 7]
    assert not run.mask_of(0).any() and run.mask_of(3) is run.mask_of(1)
    with pytest.raises(CalibrationError, match="whole exposures of 2 amplifiers"):
        calibrate.calibrate_run(frames[:5], {}, load_config().calibrate, 3.75, None, amps)


def test_hdus_that_started_at_different_times_are_exposures(tmp_path):
    """Exposures share the file's attrs: their four different GAINs would be applied as the
    first one's (a second exposure's energies 2x off), so they are refused unless one is given."""
    starts = [f"2024-03-0{d}T00:00:00" for d in (1, 2, 3, 4)]
    runs = damic_like(tmp_path / "runs.fits", starts)
    with pytest.raises(FrameFileError, match=r"separate exposures with different gain_adu_per_e"):
        open_frames(runs, _io())
    one_gain = {"attrs": {"gain_adu_per_e": 0.5}}
    with open_frames(runs, _io(**one_gain)) as ff:
        assert ff.amplifiers == 1 and ff.n_exposures == 4
        assert "different DATE-OBS" in ff.sources["hdus"]
        assert ff.attrs["gain_adu_per_e"] == 0.5
    ccd = damic_like(tmp_path / "ccd.fits")
    with open_frames(ccd, _io(hdus_are="exposures", **one_gain)) as ff:
        assert (
            ff.amplifiers == 1 and ff.n_exposures == 4 and "io.fits.hdus_are" in ff.sources["hdus"]
        )
    same = damic_like(tmp_path / "same.fits", ["2024-03-01T00:00:00"] * 4)
    with open_frames(same, _io()) as ff:
        assert ff.amplifiers == 4


def test_exposures_of_several_amplifiers_are_grouped_by_their_start_times(tmp_path):
    """Two exposures, each read by two amplifiers (as CCD_A..D here): 2 amplifiers, 2
    exposures, each amplifier its own gain; the live time counts two exposures."""
    first, second = "2024-03-01T00:00:00", "2024-03-01T01:00:00"
    path = damic_like(tmp_path / "two.fits", [first, first, second, second])
    with open_frames(path, _io()) as ff:
        assert ff.amplifiers == 2 and ff.n_exposures == 2
        gains = [a["gain_adu_per_e"] for a in ff.amplifier_attrs]
        assert gains == pytest.approx([1 / g for g in GAINS_E_PER_ADU[:2]])
        assert "2 exposures (by DATE-OBS) of 2 amplifiers" in ff.sources["hdus"]
    mixed = damic_like(tmp_path / "mixed.fits", [first, second, first, second])
    with pytest.raises(Exception, match=r"mixed\.fits: .*set io.fits.hdus_are") as error:
        open_frames(mixed, _io()).__enter__()
    assert "\n" not in str(error.value)


def test_one_detector_stands_for_the_amplifiers_in_the_efficiency_simulation(tmp_path):
    with open_frames(damic_like(tmp_path / "ccd.fits"), _io()) as ff:
        attrs = ff.detector_attrs
    assert attrs["readout_noise_e"] == pytest.approx(np.median(NOISE_E))
    assert attrs["gain_adu_per_e"] == pytest.approx(np.median([1 / g for g in GAINS_E_PER_ADU]))
    assert attrs["exposure_s"] == 500


def test_only_sci_hdus_are_frames_in_a_sci_var_dq_file(tmp_path):
    data = np.ones((8, 8), np.float32)
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(data, name=n) for n in ("SCI", "VAR", "DQ")]
    fits.HDUList(hdus).writeto(tmp_path / "sci.fits")
    with open_frames(tmp_path / "sci.fits", _io()) as ff:
        assert ff.n_frames == 1 and ff.amplifiers == 1


def test_the_activity_counts_one_exposure_for_four_amplifiers(tmp_path):
    path = damic_like(tmp_path / "ccd.fits")
    catalogue = write_catalogue(empty_catalogue(), tmp_path / "c.parquet")[0]
    config = load_config(overrides={"activity.efficiency": 0.3})
    out = tmp_path / "a.json"
    activity.run(settings_of(config, "activity"), catalogue, path, out)
    summary = json.loads(out.read_text())
    assert summary["live_time_s"] == 500.0  # not 4 x 500 s: the amplifiers read one exposure
    assert summary["exposures"] == 1 and summary["frames_per_exposure"] == 4
    assert len(summary["counts_per_frame"]["tritium"]) == 4  # counts stay per amplifier image
