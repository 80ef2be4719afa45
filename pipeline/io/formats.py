"""Format readers: HDF5 (h5py), ROOT (uproot) and FITS (astropy), each a lazy `FrameFile`."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import h5py
import numpy as np

if TYPE_CHECKING:  # uproot, awkward and astropy load with the first file of their format
    from astropy.io import fits

from pipeline.config import IOConfig
from pipeline.config.files import FitsConfig
from pipeline.io.base import (
    DEFAULT_ATTRS,
    ROOT_BLOCK,
    FrameFile,
    FrameFileError,
    dtype_name,
    is_numeric,
)
from pipeline.io.fits_header import header_values


def _h5_datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _h5_array(path: Path, f: h5py.File, name: str, what: str = "frames") -> da.Array:
    ds = f.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise FrameFileError(
            path, f"no {what} dataset '{name}' (datasets present: {_h5_datasets(f) or 'none'})"
        )
    if ds.ndim not in (2, 3):
        raise FrameFileError(
            path,
            f"dataset '{name}' has rank {ds.ndim} (shape {ds.shape}); "
            "expected 2-D (H, W) or 3-D (N, H, W)",
        )
    if not is_numeric(ds.dtype):
        raise FrameFileError(
            path,
            f"dataset '{name}' has non-numeric dtype "
            f"{dtype_name(ds.dtype)}; expected integer or float",
        )
    chunks = ds.chunks or ((1,) * (ds.ndim - 2) + ds.shape[-2:])
    arr = da.from_array(ds, chunks=chunks, lock=True, name=False)  # False: a unique random key
    return arr[None] if arr.ndim == 2 else arr


def attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.size == 1 and value.ndim <= 1:
            return attr_value(value.reshape(()).item())
        return value.tolist() if value.size <= 16 else f"<array {value.shape} {value.dtype}>"
    return value.item() if isinstance(value, np.generic) else value


def names_of(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)):
        value = attr_value(value).split(",")
    return [attr_value(v).strip() if isinstance(v, bytes) else str(v).strip() for v in value]


def open_hdf5(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    f = h5py.File(path, "r")
    handles.append(f)
    frames = _h5_array(path, f, io.frames_dataset)
    labels = _h5_array(path, f, io.labels_dataset, "labels") if io.labels_dataset in f else None
    instances = None
    if io.instances_dataset in f:
        instances = _h5_array(path, f, io.instances_dataset, "instances")
    events = None
    if isinstance(f.get(io.events_group), h5py.Group):
        group = f[io.events_group]
        events = {k: np.asarray(v[()]) for k, v in group.items() if isinstance(v, h5py.Dataset)}
    attrs = dict(DEFAULT_ATTRS)
    attrs.update({k: attr_value(v) for k, v in f.attrs.items() if k != "class_names"})
    attrs = {k: v for k, v in attrs.items() if v is not None}
    names = names_of(f.attrs["class_names"]) if "class_names" in f.attrs else None
    defaulted = frozenset(DEFAULT_ATTRS) - set(f.attrs)
    return FrameFile(
        path,
        "hdf5",
        frames,
        labels,
        instances,
        events,
        names,
        attrs,
        defaulted=defaulted,
        _handles=handles,
    )


# --------------------------------------------------------------------------------------------
# ROOT


def _root_block(
    path: Path,
    branch: Any,
    lock: threading.Lock,
    start: int,
    stop: int,
    hw: tuple[int, int],
    dtype: np.dtype,
) -> np.ndarray:
    import awkward as ak

    with lock:
        arr = branch.array(entry_start=start, entry_stop=stop, library="ak")
    counts = np.asarray(ak.num(arr))
    bad = np.flatnonzero(counts != hw[0] * hw[1])
    if bad.size:
        raise FrameFileError(
            path,
            f"entry {start + bad[0]}: '{branch.name}' has "
            f"{counts[bad[0]]} values, expected height*width = "
            f"{hw[0]}*{hw[1]} = {hw[0] * hw[1]}",
        )
    flat = np.asarray(ak.to_numpy(ak.flatten(arr)), dtype=dtype)
    return flat.reshape(stop - start, *hw)


def _root_array(path: Path, tree: Any, name: str, hw: tuple[int, int], n: int) -> da.Array:
    branch, lock = tree[name], threading.Lock()
    dtype = np.dtype(branch.array(entry_start=0, entry_stop=1, library="np")[0].dtype)
    if not is_numeric(dtype):
        raise FrameFileError(path, f"branch '{name}' has non-numeric dtype {dtype}")
    blocks = []
    for start in range(0, n, ROOT_BLOCK):
        stop = min(start + ROOT_BLOCK, n)
        load = dask.delayed(_root_block, pure=False)(path, branch, lock, start, stop, hw, dtype)
        blocks.append(da.from_delayed(load, shape=(stop - start, *hw), dtype=dtype))
    return da.concatenate(blocks, axis=0)


def open_root(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    import uproot

    f = uproot.open(path)
    handles.append(f)
    keys = f.keys(cycle=False)
    if io.root_tree not in keys or not isinstance(f[io.root_tree], uproot.TTree):
        present = ", ".join(f"{k} ({c})" for k, c in f.classnames(cycle=False).items())
        raise FrameFileError(path, f"no TTree '{io.root_tree}' (keys present: {present or 'none'})")
    tree = f[io.root_tree]
    branches = tree.keys()
    missing = [b for b in ("image", "height", "width") if b not in branches]
    if missing:
        raise FrameFileError(
            path, f"tree '{io.root_tree}' lacks branches {missing} (branches present: {branches})"
        )
    heights, widths = (tree[b].array(library="np") for b in ("height", "width"))
    if len(heights) == 0:
        raise FrameFileError(path, f"tree '{io.root_tree}' has no entries")
    shapes = sorted({(int(h), int(w)) for h, w in zip(heights, widths, strict=True)})
    if len(shapes) > 1:
        raise FrameFileError(path, f"frames have different (height, width): {shapes[:5]}")
    hw, n = shapes[0], len(heights)
    frames = _root_array(path, tree, "image", hw, n)
    labels = _root_array(path, tree, "labels", hw, n) if "labels" in branches else None
    names = names_of(str(f["class_names"])) if "class_names" in keys else None
    return FrameFile(path, "root", frames, labels, class_names=names, _handles=handles)


# --------------------------------------------------------------------------------------------
# FITS

_BITPIX = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
_UNSIGNED = {(8, -128): "int8", (16, 32768): "uint16", (32, 2**31): "uint32", (64, 2**63): "uint64"}


def _fits_dtype(header: fits.Header) -> np.dtype:
    """The dtype astropy gives the (scaled) data of an image HDU, without reading the data."""
    bitpix, bzero, bscale = header["BITPIX"], header.get("BZERO", 0), header.get("BSCALE", 1)
    if bitpix > 0 and "BLANK" in header:  # astropy gives undefined pixels as NaN in floats
        return np.dtype("float32" if bitpix <= 16 else "float64")
    if bscale == 1 and (bitpix, bzero) in _UNSIGNED:
        return np.dtype(_UNSIGNED[(bitpix, bzero)])
    if bitpix < 0 or (bscale == 1 and bzero == 0):
        return np.dtype(_BITPIX[bitpix])
    return np.dtype("float32" if bitpix <= 16 else "float64")


def _fits_frame(
    hdul: fits.HDUList,
    index: int,
    lock: threading.Lock,
    cut: tuple[slice, slice],
    over: slice | None,
    pedestal: bool,
    dtype: np.dtype,
    odt: np.dtype,
) -> tuple[np.ndarray, ...]:
    with lock:
        data = np.array(hdul[index].data)
        with contextlib.suppress(AttributeError):
            del hdul[index].data  # do not keep every frame cached on the HDU
    active = data[cut]
    ovs = data[cut[0], over] if over is not None else None
    if pedestal and ovs is not None:
        active = active.astype(np.float32) - np.median(ovs, axis=1, keepdims=True)
    out = np.asarray(active, dtype=dtype)[None]
    return (out,) if ovs is None else (out, ovs[None].astype(odt))


def _cut(path: Path, span: tuple[int, int] | None, size: int, what: str) -> slice:
    """`span` ([start, stop), from `what`: a header section or a config key) as a slice."""
    if span is None:
        return slice(0, size)
    if not 0 <= span[0] < span[1] <= size:
        raise FrameFileError(path, f"{what} {list(span)} outside the image (size {size})")
    return slice(*span)


def _fits_select(path: Path, hdul: fits.HDUList, hdus: list[int | str] | None) -> list[int]:
    images = [i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) > 0]
    if hdus is None:
        if not images:
            present = [f"{i}:{h.name}:{type(h).__name__}" for i, h in enumerate(hdul)]
            raise FrameFileError(path, f"no image HDU with data (HDUs present: {present})")
        science = [i for i in images if hdul[i].name.upper() == "SCI"]
        return science or images  # SCI, VAR, DQ... (Gemini, HST): only SCI holds the charge
    chosen = []
    for sel in hdus:
        match = [
            i
            for i in images
            if (i == sel if isinstance(sel, int) else hdul[i].name.upper() == str(sel).upper())
        ]
        if not match:
            present = [f"{i}:{hdul[i].name}" for i in images]
            raise FrameFileError(
                path,
                f"HDU {sel!r} not found among the image HDUs "
                f"(image HDUs present: {present or 'none'})",
            )
        chosen.append(match[0])
    return chosen


def open_gzip_fits(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    """A gzip-compressed FITS file; FrameFileError if what the gzip holds is not FITS."""
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(9)
    except (OSError, EOFError) as exc:
        raise FrameFileError(path, f"gzip-compressed, but cannot be decompressed: {exc}") from None
    if head != b"SIMPLE  =":
        raise FrameFileError(
            path, f"gzip-compressed, but not FITS inside (first bytes {head!r}); only FITS may be"
        )
    return open_fits(path, io, handles)


def open_fits(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    cfg = io.fits
    with warnings.catch_warnings():  # astropy only warns about truncated or damaged HDUs
        warnings.simplefilter("error", AstropyUserWarning)
        hdul = fits.open(path)
        handles.append(hdul)
        hdul.readall()
    indices = _fits_select(path, hdul, cfg.hdus)
    shapes = {i: tuple(hdul[i].header[f"NAXIS{k}"] for k in (2, 1)) for i in indices}
    bad_rank = [i for i in indices if hdul[i].header["NAXIS"] != 2]
    if bad_rank:
        raise FrameFileError(
            path,
            f"HDU {bad_rank[0]} has rank {hdul[bad_rank[0]].header['NAXIS']}; expected 2-D images",
        )
    found = {i: header_values(path, _headers(hdul, i), cfg) for i in indices}
    cuts = {
        i: (
            _cut(path, found[i].data_rows, s[0], found[i].source("data_rows")),
            _cut(path, found[i].data_cols, s[1], found[i].source("data_cols")),
        )
        for i, s in shapes.items()
    }
    cut_shapes = {i: (c[0].stop - c[0].start, c[1].stop - c[1].start) for i, c in cuts.items()}
    if len(set(cut_shapes.values())) > 1:
        raise FrameFileError(path, f"image HDUs differ in shape: {cut_shapes} (HDU: (rows, cols))")
    first = found[indices[0]]  # the file's attributes: those of its first image HDU
    pedestal = cfg.pedestal_from_overscan and first.overscan_cols is not None
    if cfg.pedestal_from_overscan and first.overscan_cols is None:
        raise FrameFileError(
            path, "io.fits.pedestal_from_overscan needs io.fits.overscan_cols or a BIASSEC"
        )
    dtypes = [_fits_dtype(hdul[i].header) for i in indices]
    dtype = np.dtype(np.float32) if pedestal else np.result_type(*dtypes)
    lock, frames, overscan = threading.Lock(), [], []
    for i, odt in zip(indices, dtypes, strict=True):
        spans = found[i].overscan_cols
        over = spans and _cut(path, spans, shapes[i][1], found[i].source("overscan_cols"))
        load = dask.delayed(_fits_frame, pure=False, nout=1 if over is None else 2)(
            hdul, i, lock, cuts[i], over, pedestal, dtype, odt
        )
        frames.append(da.from_delayed(load[0], shape=(1, *cut_shapes[i]), dtype=dtype))
        if over is not None:
            oshape = (1, cut_shapes[i][0], over.stop - over.start)
            overscan.append(da.from_delayed(load[1], shape=oshape, dtype=odt))
    ovs = da.concatenate(overscan, axis=0) if overscan else None
    amplifiers, why = hdu_layout(path, hdul, indices, cfg)
    layout = "amplifiers" if amplifiers > 1 else "exposures"
    count = f"{len(indices)} {layout}" if len(indices) > 1 else "1 exposure"
    skipped = _skipped(hdul, indices)
    sources = {"hdus": f"{count}: {why}{skipped}"} if len(indices) > 1 or skipped else {}
    sources |= first.sources  # the choice is said where there was one
    per_hdu = [{**DEFAULT_ATTRS, **found[i].attrs} for i in indices]
    if amplifiers == 1:
        _same_exposure_attrs(path, [hdul[i].name or str(i) for i in indices], per_hdu)
    return FrameFile(
        path,
        "fits",
        da.concatenate(frames, axis=0),
        attrs=per_hdu[0],
        overscan=ovs,
        sources=sources,
        amplifier_attrs=per_hdu[:amplifiers] if amplifiers > 1 else None,
        defaulted=frozenset(DEFAULT_ATTRS) - set(first.attrs),
        _handles=handles,
    )


def _same_exposure_attrs(path: Path, names: list[str], per_hdu: list[dict[str, Any]]) -> None:
    """HDUs read as exposures share one set of attrs (the file's); a gain, exposure or pixel
    size that differs between them would be applied to the wrong frames, so it is refused (the
    nominal readout noise may differ: the noise of every frame is measured)."""
    for key in ("gain_adu_per_e", "exposure_s", "pixel_size_um", "thickness_um"):
        values = {name: attrs.get(key) for name, attrs in zip(names, per_hdu, strict=True)}
        if len(set(values.values())) > 1:
            shown = ", ".join(f"{n}: {v}" for n, v in list(values.items())[:4])
            raise FrameFileError(
                path,
                f"its HDUs are separate exposures with different {key} ({shown}); read one "
                "exposure at a time (io.fits.hdus) or give the value (io.fits.attrs)",
            )


def _skipped(hdul: fits.HDUList, indices: list[int]) -> str:
    """The image HDUs not read, in words ('' when none)."""
    left = [
        h.name or str(i)
        for i, h in enumerate(hdul)
        if i not in indices and h.is_image and h.header.get("NAXIS", 0) > 0
    ]
    return f"; not read: {', '.join(left)} (io.fits.hdus)" if left else ""


def hdu_layout(
    path: Path, hdul: fits.HDUList, indices: list[int], cfg: FitsConfig
) -> tuple[int, str]:
    """(amplifiers per exposure, why) for the image HDUs read. By `io.fits.hdus_are`, or (auto)
    as the multi-extension convention has it: one file is one exposure, its HDUs the amplifiers
    (or CCDs) that read it out, unless their own headers give different start times
    (`io.fits.keywords.exposure_start`): then each run of HDUs with one start time, in file
    order, is an exposure read by that many amplifiers (one each: the HDUs are exposures)."""
    names = ", ".join(hdul[i].name or str(i) for i in indices)
    if len(indices) == 1:
        return 1, f"one image HDU ({names})"
    if cfg.hdus_are != "auto":
        amplifiers = len(indices) if cfg.hdus_are == "amplifiers" else 1
        return amplifiers, f"HDUs {names}, by io.fits.hdus_are"
    for keyword in cfg.keywords.exposure_start:
        starts = [hdul[i].header.get(keyword) for i in indices]
        if len(set(starts) - {None}) < 2:
            continue
        runs = [len(list(group)) for _, group in itertools.groupby(starts)]
        if len(set(runs)) > 1 or len(runs) != len(set(starts)):
            raise FrameFileError(
                path,
                f"HDUs {names}: their {keyword} values {starts} do not group them, in file "
                "order, into exposures of as many amplifiers each; set io.fits.hdus_are or "
                "io.fits.hdus",
            )
        if runs[0] == 1:
            return 1, f"HDUs {names} start at different {keyword} (io.fits.hdus_are: auto)"
        return runs[0], (
            f"HDUs {names}: {len(runs)} exposures (by {keyword}) of {runs[0]} amplifiers "
            "(io.fits.hdus_are: auto)"
        )
    why = f"HDUs {names} of one exposure (no different start times; io.fits.hdus_are)"
    return len(indices), why


def _headers(hdul: fits.HDUList, index: int) -> list[tuple[str, Any]]:
    """The headers a keyword of image HDU `index` is looked up in: its own, then the primary."""
    own = (f"HDU {index} {hdul[index].name}".rstrip(), hdul[index].header)
    return [own] if index == 0 else [own, ("primary header", hdul[0].header)]
