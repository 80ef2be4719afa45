"""The artefacts section of the configuration: charge the detector (or light on it) makes that no
particle made, which the simulator draws and labels with the class `artefacts.label`.

Readout artefacts (`ReadoutArtefacts`) are what SENSEI and DAMIC-M mask in every analysis; light
(`LightConfig`) is what an astronomical frame holds beside cosmic rays: stars, a spectrum's trace,
sky lines. Every amplitude 0 (the default detector's) draws nothing. The training stream draws
them per tile from `stream.artefacts` (`ArtefactRanges`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from pipeline.config.base import Section

MAX_E = 1e7  # no pixel holds more charge than this (full wells are 1e4-1e6 e-)


def _ordered(span: tuple[float, float]) -> tuple[float, float]:
    if not 0 <= span[0] <= span[1]:
        raise ValueError(f"a range [low, high] with 0 <= low <= high, got {list(span)}")
    return span


Span = Annotated[tuple[float, float], AfterValidator(_ordered)]


class CtiConfig(Section):
    """Charge-transfer inefficiency: traps hold part of a pixel's charge and release it into the
    pixels read after it, a trail behind every charge along the readout."""

    serial: float = Field(
        ge=0, le=0.5, description="share of a pixel's charge deferred along its row"
    )
    parallel: float = Field(ge=0, le=0.5, description="share deferred along its column")
    trail_px: float = Field(
        gt=0, le=100, description="mean trail length (exponential release), pixels"
    )


class SerialHitsConfig(Section):
    """Particles crossing the serial register while it is clocked: a streak in one row, with no
    diffusion (the register is not the depleted bulk)."""

    rate_per_frame: float = Field(ge=0, le=1e4)
    length_px: Span = Field(description="streak length, pixels, log-uniform")
    e_per_px: Span = Field(description="charge per pixel of the streak (e-), log-uniform")


class CrosstalkConfig(Section):
    """Ghosts between amplifiers read at once: the frame is `amplifiers` segments side by side,
    each read from its outer edge, and each pixel gets `coefficient` x the charge of the pixel read
    at the same moment by every other amplifier."""

    amplifiers: int = Field(ge=1, le=16)
    coefficient: float = Field(ge=-0.1, le=0.1)


class GlowConfig(Section):
    """Light from the output amplifier (a corner) and from the frame's edges (edge glow)."""

    amplifier_e: float = Field(
        ge=0, le=MAX_E, description="charge per pixel at the amplifier corner (e-)"
    )
    amplifier_scale_px: float = Field(gt=0, le=1e4, description="its exponential fall-off, pixels")
    edge_e: float = Field(ge=0, le=MAX_E, description="charge per pixel at the frame's edges (e-)")
    edge_scale_px: float = Field(gt=0, le=1e4, description="its fall-off into the frame, pixels")


class BaselineConfig(Section):
    """Correlated noise and pedestal jumps: not charge, the baseline under it."""

    pickup_e: float = Field(
        ge=0, le=MAX_E, description="amplitude of a sinusoidal pickup along the readout (e-)"
    )
    pickup_period_px: float = Field(gt=1, le=1e7, description="its period in pixels read")
    jumps_per_frame: float = Field(ge=0, le=1e4, description="pedestal jumps (Poisson mean)")
    jump_e: Span = Field(description="their size (e-), uniform; a jump lasts to the end of its row")


class TrapColumnsConfig(Section):
    """Bad columns starting at a trap: every pixel clocked past the trap picks up charge, so the
    column is bright from the trap's row to the row farthest from the readout."""

    number: int = Field(
        ge=0, le=16384, description="trap columns, fixed per detector (defect_seed)"
    )
    e_per_px: Span = Field(description="their charge per pixel (e-), uniform per column")


class ReadoutArtefacts(Section):
    cti: CtiConfig
    serial_hits: SerialHitsConfig
    crosstalk: CrosstalkConfig
    glow: GlowConfig
    spurious_charge_e: float = Field(ge=0, le=10)
    baseline: BaselineConfig
    trap_columns: TrapColumnsConfig
    serial_full_well_e: float | None = Field(default=None, gt=0, le=MAX_E)
    adc_max_adu: float | None = Field(default=None)


class LightConfig(Section):
    """Light that is not a particle, as an astronomical frame holds it."""

    stars_per_frame: float = Field(ge=0, le=1e5)
    star_fwhm_px: Span
    star_e: Span = Field(description="a star's total charge (e-), log-uniform")
    traces_per_frame: float = Field(ge=0, le=100)
    trace_fwhm_px: Span
    trace_e_per_px: Span = Field(
        description="a trace's charge per pixel along it (e-), log-uniform"
    )
    sky_lines_per_frame: float = Field(ge=0, le=1000)
    sky_line_fwhm_px: Span
    sky_line_e_per_px: Span = Field(
        description="a sky line's charge per pixel along it (e-), log-uniform"
    )


class ArtefactsConfig(Section):
    label: str = Field(description="the class artefact pixels are labelled with (one of classes)")
    readout: ReadoutArtefacts
    light: LightConfig


class ArtefactRanges(Section):
    """What the training stream draws per tile: which tiles get artefacts, and their sizes."""

    share: float = Field(ge=0, le=1, description="share of tiles with readout artefacts")
    light_share: float = Field(ge=0, le=1, description="share of tiles with light")
    cti: Span = Field(description="deferred share, serial and parallel each, log-uniform")
    serial_hits: Span = Field(description="serial-register hits per 1024^2 frame")
    crosstalk: Span = Field(description="crosstalk coefficient, log-uniform, either sign")
    glow_e: Span = Field(description="amplifier and edge glow at the source (e-), log-uniform")
    spurious_charge_e: Span = Field(description="clock-induced charge per pixel, log-uniform")
    pickup_e: Span = Field(description="pickup amplitude (e-)")
    jumps: Span = Field(description="pedestal jumps per 1024^2 frame")
    trap_columns: Span = Field(description="trap columns per 1024 columns")
    bleed: float = Field(ge=0, le=1, description="share of artefact tiles with a serial full well")
    stars: Span = Field(description="stars per 256^2 tile with light")
    traces: Span = Field(description="traces per tile with light")
    sky_lines: Span = Field(description="sky lines per tile with light")
