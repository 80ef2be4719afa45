"""The sections of the configuration that say how frame files are read: HDF5 dataset names, the
ROOT tree, the prefetching reader, and FITS image HDUs, header keywords and sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import Section


class FitsKeywords(Section):
    """Header keywords, first found wins (pipeline/io/fits_header.py)."""

    gain_e_per_adu: list[str]
    readout_noise_e: list[str]
    exposure_s: list[str]
    data_section: list[str]
    bias_section: list[str]
    overscan_columns: list[str] = Field(default_factory=list)
    exposure_start: list[str]


class FitsConfig(Section):
    header: bool
    keywords: FitsKeywords
    attrs: dict[
        Literal["gain_adu_per_e", "readout_noise_e", "exposure_s", "pixel_size_um", "thickness_um"],
        float,
    ]
    hdus: list[int | str] | None
    hdus_are: Literal["auto", "amplifiers", "exposures"]
    data_rows: tuple[int, int] | None
    data_cols: tuple[int, int] | None
    overscan_cols: tuple[int, int] | None
    pedestal_from_overscan: bool


class IOConfig(Section):
    frames_dataset: str
    labels_dataset: str
    instances_dataset: str
    events_group: str
    root_tree: str
    check_finite: bool
    prefetch_frames: int = Field(ge=0, le=64)
    max_frame_mb: float = Field(gt=0, le=1e6)
    fits: FitsConfig
