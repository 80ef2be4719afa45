"""Atomic writers: frame files (HDF5, ROOT) and map files (HDF5)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np

from pipeline.config import IOConfig
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import printable
from pipeline.io.base import DEFAULT_ATTRS, EVENT_COLUMNS, ROOT_BLOCK


def _h5_dataset(parent: h5py.Group, name: str, data: Any = None, **kw: Any) -> h5py.Dataset:
    if kw.get("chunks"):
        kw.update(compression="gzip", compression_opts=1, shuffle=True)
    return parent.create_dataset(name, data=data, track_times=False, **kw)


def _h5_group(parent: h5py.Group, name: str) -> h5py.Group:
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def _h5_class_names(obj: h5py.File, names: Sequence[str]) -> None:
    obj.attrs.create("class_names", list(names), dtype=h5py.string_dtype("utf-8"))


class _AtomicWriter:
    """Lifecycle of an atomic writer: an open `_file` inside `atomic_output`; a clean exit of
    the with-block closes and renames it into place, an exception or abort() deletes it."""

    path: Path
    _file: Any
    _atomic: contextlib.AbstractContextManager[Path]

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Drop everything written so far; no output file appears."""
        if self._file is None:
            return
        with contextlib.suppress(Exception):
            self._file.close()
        self._file = None
        exc = RuntimeError("aborted")
        self._atomic.__exit__(RuntimeError, exc, None)

    def _start(self, opener: Callable[[Path], Any]) -> None:
        """Open the temporary file through `opener`; if that fails, nothing is left behind."""
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._file = opener(tmp)
        except BaseException as exc:
            self._file = None
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def _append_rows(self, items: list[tuple[str, np.ndarray]], row: int) -> None:
        """Write `row` of each (HDF5 dataset, array) and push it to disk now. The files have no
        chunk cache, so a full disk (or a file-size limit) surfaces here, as one OSError naming
        the file, and never later in a destructor."""
        try:
            for name, arr in items:
                dataset = self._file[name]
                dataset.resize(row + 1, axis=0)
                dataset[row] = np.asarray(arr).astype(dataset.dtype, copy=False)
            self._file.flush()
        except (OSError, RuntimeError) as exc:
            found = re.search(r"error message = '([^']+)'", str(exc))
            reason = found.group(1) if found else str(exc).splitlines()[0]
            raise OSError(f"{self.path}: write failed ({reason})") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class FrameWriter(_AtomicWriter):
    """Append-only writer of a frame file, HDF5 or ROOT (chosen from the suffix: .h5/.hdf5 or
    .root; anything else is a ValueError naming the path). Atomic: writes to a temporary name in
    the same directory and renames it over the final path on successful close; on any exception
    inside the with-block, or if abort() is called, the temporary file is deleted."""

    def __init__(
        self,
        path: str | Path,
        *,
        io: IOConfig,
        height: int,
        width: int,
        frame_dtype: str = "float32",
        class_names: Sequence[str] | None = None,
        attrs: Mapping[str, Any] | None = None,
        with_truth: bool = False,
    ) -> None:
        self.path, self.io, self.hw = Path(path), io, (int(height), int(width))
        suffix = self.path.suffix.lower()
        if suffix not in (".h5", ".hdf5", ".root"):
            raise ValueError(f"{self.path}: unsupported output suffix (use .h5, .hdf5 or .root)")
        if with_truth and not class_names:
            raise ValueError(f"{self.path}: with_truth=True needs class_names")
        self.kind = "root" if suffix == ".root" else "hdf5"
        self.dtype, self.with_truth, self.n = np.dtype(frame_dtype), with_truth, 0
        self.class_names = list(class_names) if class_names else None
        self._events: list[dict[str, np.ndarray]] = []
        self._batch: list[tuple[np.ndarray, np.ndarray | None]] = []
        hdf5 = self.kind == "hdf5"
        self._start(lambda tmp: self.open_hdf5(tmp, attrs) if hdf5 else self.open_root(tmp))

    def open_hdf5(self, tmp: Path, attrs: Mapping[str, Any] | None) -> h5py.File:
        f = h5py.File(tmp, "w", libver="earliest", rdcc_nbytes=0)
        meta = {**DEFAULT_ATTRS, "readout_noise_e": 0.0, "units": "ADU", **(attrs or {})}
        for key, value in meta.items():
            f.attrs[key] = value
        if self.class_names:
            _h5_class_names(f, self.class_names)
        shape, chunks = (0, *self.hw), (1, *self.hw)
        names: list[tuple[str, np.dtype | str]] = [(self.io.frames_dataset, self.dtype)]
        if self.with_truth:
            names += [(self.io.labels_dataset, "uint8"), (self.io.instances_dataset, "int32")]
        for name, dtype in names:
            _h5_dataset(f, name, shape=shape, maxshape=(None, *self.hw), chunks=chunks, dtype=dtype)
        return f

    def open_root(self, tmp: Path) -> Any:
        import uproot

        f = uproot.recreate(tmp)
        if self.class_names:
            f["class_names"] = ",".join(self.class_names)
        image = "var * float64" if self.dtype == np.float64 else "var * float32"
        types = {"image": image, "height": "int32", "width": "int32"}
        if self.with_truth:
            types["labels"] = "var * uint8"
        f.mktree(self.io.root_tree, types)
        return f

    def append(
        self,
        frame: np.ndarray,
        labels: np.ndarray | None = None,
        instances: np.ndarray | None = None,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append one (H, W) frame and, with truth, its labels, instances and event rows."""
        arrays = {"frame": frame, "labels": labels, "instances": instances}
        for what, arr in arrays.items():
            if arr is not None and np.shape(arr) != self.hw:
                raise ValueError(f"{self.path}: {what} shape {np.shape(arr)} != {self.hw}")
        if self.with_truth and labels is None:
            raise ValueError(f"{self.path}: with_truth=True needs labels for every frame")
        n_cls = len(self.class_names or [])
        if labels is not None and n_cls and not 0 <= np.min(labels) <= np.max(labels) < n_cls:
            raise ValueError(f"{self.path}: label values outside class_names {self.class_names}")
        if events is not None:
            unknown = set(events) - set(EVENT_COLUMNS)
            missing = set(EVENT_COLUMNS) - {"frame"} - set(events)
            if unknown or missing:
                raise ValueError(
                    f"{self.path}: event columns: unknown {sorted(unknown)}, "
                    f"missing {sorted(missing)}"
                )
            cols = {
                c: np.asarray(events[c], dtype=t) for c, t in EVENT_COLUMNS.items() if c != "frame"
            }
            if len({len(v) for v in cols.values()}) > 1:
                raise ValueError(f"{self.path}: event columns differ in length")
            cols["frame"] = np.full(len(cols["class"]), self.n, np.int32)
            self._events.append(cols)
        if self.kind == "root":
            self._batch.append((np.array(frame), None if labels is None else np.array(labels)))
            if len(self._batch) >= ROOT_BLOCK:
                self._flush_root()
        else:
            self._append_hdf5(frame, labels, instances)
        self.n += 1

    def _append_hdf5(
        self, frame: np.ndarray, labels: np.ndarray | None, instances: np.ndarray | None
    ) -> None:
        items = [(self.io.frames_dataset, frame)]
        if self.with_truth:
            assert labels is not None  # append() requires labels with truth
            inst = np.zeros(self.hw, np.int32) if instances is None else instances
            items += [(self.io.labels_dataset, labels), (self.io.instances_dataset, inst)]
        self._append_rows(items, self.n)

    def _flush_root(self) -> None:
        import awkward as ak

        if not self._batch:
            return
        size, n = self.hw[0] * self.hw[1], len(self._batch)
        image_dtype = np.float64 if self.dtype == np.float64 else np.float32
        data = {
            "image": ak.unflatten(
                np.concatenate([f.ravel() for f, _ in self._batch]).astype(image_dtype),
                np.full(n, size),
            ),
            "height": np.full(n, self.hw[0], np.int32),
            "width": np.full(n, self.hw[1], np.int32),
        }
        if self.with_truth:
            labels = [lab for _, lab in self._batch if lab is not None]  # all, with truth
            flat = np.concatenate([lab.ravel() for lab in labels]).astype(np.uint8)
            data["labels"] = ak.unflatten(flat, np.full(n, size))
        self._file[self.io.root_tree].extend(data)
        self._batch = []

    def annotate(self, attrs: Mapping[str, Any]) -> None:
        """Add attrs known only once every frame was written (HDF5; ROOT frame files carry
        none)."""
        if self.kind == "hdf5":
            for name, value in attrs.items():
                self._file.attrs[name] = value

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._file is None:
            return
        try:
            if self.kind == "root":
                self._flush_root()
            elif self.with_truth or self._events:
                group = _h5_group(self._file, self.io.events_group)
                for col, dtype in EVENT_COLUMNS.items():
                    parts = [e[col] for e in self._events]
                    _h5_dataset(group, col, np.concatenate(parts) if parts else np.zeros(0, dtype))
            self._file.close()
        except BaseException as exc:
            self._file = None
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._file = None
        self._atomic.__exit__(None, None, None)


UNCERTAINTY_MEANING = (
    "normalised entropy of the class probabilities: 0 one class certain, 1 every class alike"
)


class MapWriter(_AtomicWriter):
    """Append-only map file of the contract, frame by frame: `labels` (N, H, W) uint8, optional
    `probabilities` (N, C, H, W) float16, optional `uncertainty` (N, H, W) float16 (the
    normalised entropy of the class probabilities), attrs `class_names` and `source`, and the
    provenance attrs given (`model`, `model_sha256`: what the map was made from). Atomic like
    FrameWriter: the file appears only when the writer closes without error."""

    def __init__(
        self,
        path: str | Path,
        *,
        height: int,
        width: int,
        class_names: Sequence[str],
        source: str | Path,
        probabilities: bool = False,
        provenance: Mapping[str, str] | None = None,
        uncertainty: bool = False,
    ) -> None:
        self.path, self.hw, self.n = Path(path), (int(height), int(width)), 0
        self.class_names = list(class_names)
        attrs = {"source": str(source), **(provenance or {})}
        self._start(lambda tmp: self._open(tmp, attrs, probabilities, uncertainty))

    def _open(
        self, tmp: Path, attrs: Mapping[str, str], probabilities: bool, uncertainty: bool
    ) -> h5py.File:
        f = h5py.File(tmp, "w", libver="earliest", rdcc_nbytes=0)
        _h5_class_names(f, self.class_names)
        for name, value in attrs.items():
            f.attrs[name] = printable(str(value))
        c, (h, w) = len(self.class_names), self.hw
        _h5_dataset(
            f, "labels", shape=(0, h, w), maxshape=(None, h, w), chunks=(1, h, w), dtype="uint8"
        )
        if probabilities:
            _h5_dataset(
                f,
                "probabilities",
                shape=(0, c, h, w),
                maxshape=(None, c, h, w),
                chunks=(1, c, h, w),
                dtype="float16",
            )
        if uncertainty:
            _h5_dataset(
                f, "uncertainty", shape=(0, h, w), maxshape=(None, h, w), chunks=(1, h, w),
                dtype="float16",
            )  # fmt: skip
            f["uncertainty"].attrs["meaning"] = UNCERTAINTY_MEANING
        return f

    def annotate(self, attrs: Mapping[str, str]) -> None:
        """Add attrs known only once every frame was written (a digest of the input)."""
        for name, value in attrs.items():
            self._file.attrs[name] = printable(str(value))

    def append(
        self,
        labels: np.ndarray,
        probabilities: np.ndarray | None = None,
        uncertainty: np.ndarray | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if labels.shape != self.hw:
            raise ValueError(f"{self.path}: labels shape {labels.shape} != {self.hw}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(
                f"{self.path}: label values {labels.min()}..{labels.max()} outside "
                f"class_names {self.class_names}"
            )
        items = [("labels", labels.astype(np.uint8))]
        if "probabilities" in self._file:
            expected = (len(self.class_names), *self.hw)
            got = () if probabilities is None else np.shape(probabilities)
            if got != expected:
                raise ValueError(
                    f"{self.path}: probabilities shape {got} != (C, H, W) = {expected}"
                )
            items.append(("probabilities", np.asarray(probabilities, dtype=np.float16)))
        if "uncertainty" in self._file:
            got_u = () if uncertainty is None else np.shape(uncertainty)
            if got_u != self.hw:
                raise ValueError(f"{self.path}: uncertainty shape {got_u} != {self.hw}")
            items.append(("uncertainty", np.asarray(uncertainty, dtype=np.float16)))
        self._append_rows(items, self.n)
        self.n += 1

    def close(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        self._atomic.__exit__(None, None, None)


def write_map(
    path: str | Path,
    labels: np.ndarray,
    class_names: Sequence[str],
    source: str | Path,
    probabilities: np.ndarray | None = None,
) -> None:
    """Write a whole map file (labels, optional float16 probabilities) atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"{path}: labels must be (N, H, W), got shape {labels.shape}")
    n, h, w = labels.shape
    if probabilities is not None and np.shape(probabilities) != (n, len(class_names), h, w):
        raise ValueError(
            f"{path}: probabilities shape {np.shape(probabilities)} != (N, C, H, W) = "
            f"{(n, len(class_names), h, w)}"
        )
    with MapWriter(
        path,
        height=h,
        width=w,
        class_names=class_names,
        source=source,
        probabilities=probabilities is not None,
    ) as writer:
        for i in range(n):
            writer.append(labels[i], None if probabilities is None else probabilities[i])
