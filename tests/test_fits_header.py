"""FITS headers read as ccdproc and IRAF write them: gain in electrons per ADU turned into ADU per
electron, read noise, exposure, 1-based inclusive sections, keywords inherited from the primary
header, and the config over all of it; on the public real files and on files the tests write."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.config import ConfigError, load_config
from pipeline.io import FrameFileError, open_frames
from pipeline.io.fits_header import parse_section

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
SAAO = REAL / "ccdproc_a8280271_SAAO1m_STE3_raw.fits"
GMOS = REAL / "astroscrappy_gmos_S20190808S0048_cutout.fits"
IO = load_config().io
needs_real = pytest.mark.skipif(not SAAO.is_file(), reason="the shared real files are not here")


def _io(**fits_keys):
    return IO.model_copy(update={"fits": IO.fits.model_copy(update=fits_keys)})


def test_sections_are_one_based_inclusive_columns_first():
    path = Path("f.fits")
    assert parse_section(path, "BIASSEC", "[   4:  13,   1: 520]") == ((0, 520), (3, 13))
    assert parse_section(path, "TRIMSEC", "[17:528,1:520]") == ((0, 520), (16, 528))
    for bad in ("[1:5]", "17:528,1:520", "[0:5,1:5]", "[9:5,1:5]", "[a:b,1:2]"):
        with pytest.raises(FrameFileError, match="TRIMSEC"):
            parse_section(path, "TRIMSEC", bad)


@needs_real
def test_the_saao_raw_frame_reports_its_gain_noise_exposure_and_sections():
    with open_frames(SAAO, IO) as ff:
        assert ff.attrs["gain_adu_per_e"] == pytest.approx(1 / 1.9)  # GAIN = 1.9 e-/ADU
        assert ff.attrs["readout_noise_e"] == 5.0 and ff.attrs["exposure_s"] == 150.04
        assert ff.shape == (1, 520, 512)  # TRIMSEC [17:528,1:520]: the 536 columns less 24
        raw = fits.getdata(SAAO)
        np.testing.assert_array_equal(ff.read("frames", 0), raw[:, 16:528])
        overscan = np.asarray(ff.overscan[0].compute())
        assert overscan.shape == (520, 10)  # BIASSEC [4:13,1:520]
        assert np.median(overscan) == pytest.approx(214, abs=5)  # ADU, as SOURCES.md says
        assert "GAIN" in ff.sources["gain_adu_per_e"] and "TRIMSEC" in ff.sources["data_cols"]


@needs_real
def test_the_gmos_cutout_takes_its_exposure_from_the_primary_header():
    with open_frames(GMOS, IO) as ff:
        assert ff.attrs["exposure_s"] == 90.0
        assert ff.sources["exposure_s"] == "EXPTIME (primary header)"
        assert ff.attrs["gain_adu_per_e"] == 1.0  # no GAIN keyword: the default, said nowhere
        assert "gain_adu_per_e" not in ff.sources
        assert ff.shape == (1, 150, 200)  # SCI only: VAR and SKYFIT hold no charge
        assert ff.amplifiers == 1 and ff.n_exposures == 1


@needs_real
def test_inspect_says_which_hdus_were_read_and_what_the_file_does_not_state():
    from pipeline.io.inspect import describe

    with open_frames(GMOS, IO) as ff:
        gmos = describe(ff)
    assert gmos["read from"]["hdus"] == (
        "1 exposure: one image HDU (SCI); not read: VAR, SKYFIT (io.fits.hdus)"
    )
    assert gmos["not in the file (defaults)"] == ["gain_adu_per_e", "pixel_size_um"]
    with open_frames(SAAO, IO) as ff:
        saao = describe(ff)
    assert "hdus" not in saao["read from"]  # one image HDU: no choice to report
    assert saao["not in the file (defaults)"] == ["pixel_size_um"]


def _write(path: Path, primary: dict, image: dict, data=None) -> Path:
    data = np.arange(6 * 10, dtype=np.float32).reshape(6, 10) if data is None else data
    hdus = fits.HDUList([fits.PrimaryHDU(header=fits.Header(primary)), fits.ImageHDU(data)])
    hdus[1].header.update(image)
    hdus.writeto(path)
    return path


def test_extensions_inherit_the_primary_header_and_their_own_keywords_win(tmp_path):
    path = _write(
        tmp_path / "amp.fits",
        {"GAIN": 2.0, "EXPOSURE": 500, "RDNOISE": 0.2},
        {"GAIN": 4.0, "DATASEC": "[3:10,2:6]"},
    )
    with open_frames(path, IO) as ff:
        assert ff.attrs["gain_adu_per_e"] == 0.25  # the extension's GAIN, 4 e-/ADU
        assert ff.attrs["exposure_s"] == 500 and ff.attrs["readout_noise_e"] == 0.2
        assert ff.sources["exposure_s"] == "EXPOSURE (primary header)"
        assert ff.shape == (1, 5, 8)
        assert ff.read("frames", 0)[0, 0] == 12.0  # row 1, column 2 of the stored image


def test_the_config_names_keywords_and_overrides_any_value(tmp_path):
    path = _write(tmp_path / "f.fits", {}, {"CCDGAIN": 2.0, "TRIMSEC": "[3:10,2:6]"})
    keywords = IO.fits.keywords.model_copy(update={"gain_e_per_adu": ["CCDGAIN"]})
    with open_frames(path, _io(keywords=keywords)) as ff:
        assert ff.attrs["gain_adu_per_e"] == 0.5 and ff.shape == (1, 5, 8)
    over = _io(attrs={"gain_adu_per_e": 3.0, "exposure_s": 60.0}, data_cols=(0, 4))
    with open_frames(path, over) as ff:
        assert ff.attrs["gain_adu_per_e"] == 3.0 and ff.attrs["exposure_s"] == 60.0
        assert ff.sources["exposure_s"] == "config io.fits.attrs"
        assert ff.shape == (1, 5, 4) and ff.sources["data_cols"] == "config io.fits.data_cols"
    with open_frames(path, _io(header=False)) as ff:
        assert ff.shape == (1, 6, 10) and ff.sources == {} and ff.attrs["gain_adu_per_e"] == 1.0


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        ({"GAIN": "fast"}, r"header GAIN = 'fast' \(HDU 1\) is not a number"),
        ({"GAIN": 0.0}, r"header GAIN = 0.0 \(HDU 1\) is 0"),
        ({"RDNOISE": -1.0}, r"header RDNOISE = -1.0 \(HDU 1\) must be >= 0"),
        (
            {"TRIMSEC": "[3:40,1:6]"},
            r"TRIMSEC = \[3:40,1:6\] \(HDU 1\) \[2, 40\] outside the image",
        ),
    ],
)
def test_bad_header_values_are_one_line_errors_naming_the_keyword(tmp_path, image, pattern):
    path = _write(tmp_path / "bad.fits", {}, image)
    with pytest.raises(FrameFileError, match=pattern) as info:
        open_frames(path, IO)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_the_activity_takes_its_live_time_from_the_header(tmp_path):
    """EXPTIME of the frames' file, not activity.exposure_s, sets the live time."""
    import json

    from pipeline.commands import settings_of
    from pipeline.measurement import activity
    from pipeline.results.clusters import empty_catalogue, write_catalogue

    path = _write(tmp_path / "run.fits", {"EXPTIME": 150.0}, {})
    catalogue = write_catalogue(empty_catalogue(), tmp_path / "c.parquet")[0]
    config = load_config(overrides={"activity.efficiency": 0.3, "activity.exposure_s": 600.0})
    out = tmp_path / "a.json"
    activity.run(settings_of(config, "activity"), catalogue, path, out)
    summary = json.loads(out.read_text())
    assert summary["live_time_s"] == 150.0 and "attr exposure_s" in summary["exposure_s_from"]
    activity.run(
        settings_of(config, "activity"), catalogue, _write(tmp_path / "b.fits", {}, {}), out
    )
    summary = json.loads(out.read_text())
    assert summary["live_time_s"] == 600.0
    assert summary["exposure_s_from"] == "config activity.exposure_s"
    unstated = load_config(overrides={"activity.efficiency": 0.3})  # no exposure anywhere
    with pytest.raises(ConfigError, match=r"b\.fits: no exposure time .* set activity.exposure_s"):
        activity.run(settings_of(unstated, "activity"), catalogue, tmp_path / "b.fits", out)


def test_gzip_compressed_fits_reads_like_plain_fits(tmp_path):
    data = np.arange(12 * 20, dtype=np.uint16).reshape(12, 20)
    header = fits.Header({"EXPTIME": 30.0, "GAIN": 2.0})
    fits.PrimaryHDU(data, header=header).writeto(tmp_path / "frame.fits.gz")
    fits.PrimaryHDU(data, header=header).writeto(tmp_path / "frame.fits")
    packed = open_frames(tmp_path / "frame.fits.gz", IO)
    plain = open_frames(tmp_path / "frame.fits", IO)
    np.testing.assert_array_equal(np.asarray(packed.frames[0]), np.asarray(plain.frames[0]))
    assert packed.attrs == plain.attrs


def test_a_gzip_that_is_not_fits_is_a_one_line_error(tmp_path):
    import gzip

    path = tmp_path / "notes.fits.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"just some text, not an image")
    with pytest.raises(FrameFileError, match=r"notes.fits.gz: gzip-compressed, but not FITS"):
        open_frames(path, IO)


def test_cover_gives_the_last_columns_as_overscan(tmp_path):
    data = np.full((10, 40), 100, dtype=np.uint16)
    header = fits.Header({"EXPTIME": 0.0, "DATASEC": "[1:32,1:10]", "COVER": 8})
    fits.PrimaryHDU(data, header=header).writeto(tmp_path / "bias.fits")
    ff = open_frames(tmp_path / "bias.fits", IO)
    assert ff.attrs["exposure_s"] == 0.0  # a bias frame is read
    assert ff.frames.shape == (1, 10, 32)
    assert "COVER = 8" in ff.sources["overscan_cols"]


def test_the_real_bias_frame_is_read_with_its_cover_overscan():
    path = REAL / "pypeit_lick_kast_blue_b21_bias.fits.gz"
    if not path.is_file():
        pytest.skip("the shared real files are not here")
    ff = open_frames(path, IO)
    assert ff.frames.shape == (1, 350, 2048) and ff.attrs["exposure_s"] == 0.0
