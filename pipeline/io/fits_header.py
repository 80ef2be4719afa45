"""What a FITS header says about its detector, in the conventions of ccdproc and IRAF.

Owns reading the gain (`GAIN`: electrons per ADU, turned into the pipeline's ADU per electron),
the read noise (`RDNOISE`, electrons), the exposure (`EXPTIME` or `EXPOSURE`, seconds) and the
sections (`TRIMSEC`/`DATASEC`: the active region, `BIASSEC`: the serial overscan, or `COVER`: its
number of columns, the last of each row; FITS sections
are 1-based, inclusive and written `[x1:x2,y1:y2]`, columns first). A keyword is looked up in the
image HDU's header, then in the primary header, which extensions inherit. The config names the
keywords (`io.fits.keywords`) and overrides any value (`io.fits.attrs`, and `io.fits.data_rows`
etc. for the sections); every value comes with where it was read, for `pipeline inspect`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.sections import FitsConfig
from pipeline.core.errors import FrameFileError

SECTION = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]$")


@dataclass
class HeaderValues:
    """File attributes, active region and overscan (0-based [start, stop) spans) from a header,
    and where each came from."""

    attrs: dict[str, float] = field(default_factory=dict)
    data_rows: tuple[int, int] | None = None
    data_cols: tuple[int, int] | None = None
    overscan_cols: tuple[int, int] | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, name: str) -> str:
        """Where `name` came from (a header keyword, else the config key)."""
        return self.sources.get(name, f"io.fits.{name}")


def parse_section(path: Path, keyword: str, text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(rows, cols) as 0-based [start, stop) spans of a FITS section '[x1:x2,y1:y2]'."""
    found = SECTION.match(str(text).strip())
    if not found:
        raise FrameFileError(path, f"header {keyword} = {text!r} is not a section '[x1:x2,y1:y2]'")
    x1, x2, y1, y2 = (int(v) for v in found.groups())
    if x1 < 1 or y1 < 1 or x2 < x1 or y2 < y1:
        raise FrameFileError(
            path, f"header {keyword} = {text!r}: expected 1 <= x1 <= x2 and 1 <= y1 <= y2"
        )
    return (y1 - 1, y2), (x1 - 1, x2)


def _lookup(headers: list[tuple[str, Any]], keywords: list[str]) -> tuple[str, Any, str] | None:
    """(keyword, value, where) of the first keyword found, the image header before the primary."""
    for keyword in keywords:
        for where, header in headers:
            if keyword in header and header[keyword] not in (None, ""):
                return keyword, header[keyword], where
    return None


def _number(path: Path, keyword: str, value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        message = f"header {keyword} = {value!r} ({where}) is not a number"
        raise FrameFileError(path, message) from None
    if not math.isfinite(number) or number < 0:
        raise FrameFileError(path, f"header {keyword} = {value!r} ({where}) must be >= 0")
    return number


def _overscan_count(
    path: Path, headers: list[tuple[str, Any]], keywords: list[str], out: HeaderValues
) -> None:
    """The overscan as a number of columns (Lick's `COVER`): the last ones of each row."""
    found, width = _lookup(headers, keywords), _lookup(headers, ["NAXIS1"])
    if found is None or width is None:
        return
    keyword, value, where = found
    count, columns = int(_number(path, keyword, value, where)), int(width[1])
    if count == 0:
        return
    if count >= columns:
        raise FrameFileError(
            path, f"header {keyword} = {value} ({where}): as many overscan columns as the "
            f"image has ({columns})"
        )  # fmt: skip
    out.overscan_cols = (columns - count, columns)
    out.sources["overscan_cols"] = f"{keyword} = {value} ({where}): the last {count} columns"


def header_values(path: Path, headers: list[tuple[str, Any]], cfg: FitsConfig) -> HeaderValues:
    """The values of `headers` ((where, header): the image HDU's, then the primary's), with the
    config's values over them."""
    out = HeaderValues()
    keys = cfg.keywords
    if cfg.header:
        for attr, keywords in (
            ("gain_adu_per_e", keys.gain_e_per_adu),
            ("readout_noise_e", keys.readout_noise_e),
            ("exposure_s", keys.exposure_s),
        ):
            found = _lookup(headers, keywords)
            if found is None:
                continue
            keyword, value, where = found
            number = _number(path, keyword, value, where)
            if attr == "gain_adu_per_e":
                if number == 0:
                    raise FrameFileError(path, f"header {keyword} = {value!r} ({where}) is 0")
                out.attrs[attr] = 1.0 / number
                out.sources[attr] = f"1/{keyword} ({where}: {value} e-/ADU)"
            else:
                out.attrs[attr] = number
                out.sources[attr] = f"{keyword} ({where})"
        for role, keywords in (("data", keys.data_section), ("bias", keys.bias_section)):
            found = _lookup(headers, keywords)
            if found is None:
                continue
            keyword, value, where = found
            rows, cols = parse_section(path, keyword, value)
            source = f"{keyword} = {value} ({where})"
            if role == "data":
                out.data_rows, out.data_cols = rows, cols
                out.sources["data_rows"] = out.sources["data_cols"] = source
            else:
                out.overscan_cols = cols
                out.sources["overscan_cols"] = source
        if out.overscan_cols is None:
            _overscan_count(path, headers, keys.overscan_columns, out)
    for attr, value in cfg.attrs.items():
        out.attrs[attr] = float(value)
        out.sources[attr] = "config io.fits.attrs"
    for name in ("data_rows", "data_cols", "overscan_cols"):
        if getattr(cfg, name) is not None:
            setattr(out, name, tuple(getattr(cfg, name)))
            out.sources[name] = f"config io.fits.{name}"
    return out
