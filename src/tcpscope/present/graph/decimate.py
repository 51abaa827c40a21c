"""Per-pixel decimation of plot series, streamed and bounded in memory.

A graph of a million packets is drawn on about a thousand pixel columns: what
a column can show of its packets is their extremes. The series here take rows
chunk by chunk and keep, per time bin, what the pixels of that bin show:

- `Points` (a value over time: ACKs, RTT samples, windows, seq of a segment):
  the first, last, lowest and highest point of each bin (the "M4" reduction).
  Step lines and scatter plots drawn through them look exactly like the raw
  series at that width.
- `Spans` (a range over time: a segment's seq..seq+len, a SACK block): per bin
  the lowest start and highest end, the first and last time, how many rows and
  which frames (first, last).
- `Sums` (bytes over time, for rates): the sum per bin.
- `Marks` (events: a retransmission, a zero window, a SYN): never reduced;
  every mark is kept (they are few), and `fit` only merges marks that fall on
  the same pixel.

Bins are powers of two seconds wide, counted from the stream's first packet
(t = 0), so a bin of width 2w is exactly two bins of width w, and reducing
reduced rows again gives what reducing the raw rows would: while streaming,
rows are held raw until there are `CAP` of them, then reduced to at most
`N_BINS` bins of the range seen so far; `fit(width)` reduces once more to the
pixel columns of the final picture. A series with few rows is never reduced:
what is drawn is then exactly what the capture holds.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["CAP", "N_BINS", "Marks", "Points", "Spans", "Sums", "bin_width"]

#: Rows held raw before a series reduces them.
CAP = 1 << 16
#: Time bins a series keeps while streaming (the finest resolution a picture gets).
N_BINS = 4096


def bin_width(span: float, bins: int) -> float:
    """The smallest power of two (seconds) that covers `span` with `bins` bins."""
    if span <= 0 or not math.isfinite(span):
        return 2.0 ** -30
    return 2.0 ** math.ceil(math.log2(span / bins))


def _groups(t: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): rows sorted by bin (stable), and where each bin begins."""
    b = np.floor(t / w)
    order = (np.arange(len(b)) if len(b) < 2 or bool(np.all(b[1:] >= b[:-1]))
             else np.argsort(b, kind="stable"))
    sb = b[order]
    starts = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]]) if len(sb) else np.zeros(0, np.intp)
    return order, starts


class _Series:
    """Columns held as a list of chunks (raw) plus the reduced part, and the rules to reduce."""

    COLUMNS: tuple[tuple[str, str], ...] = ()

    def __init__(self) -> None:
        self._parts: list[dict[str, np.ndarray]] = []
        self._held = 0
        self.reduced = False   #: some rows were merged into bins
        self.rows = 0          #: rows added in all

    def _add(self, **cols: np.ndarray) -> None:
        n = len(cols["t"])
        if n == 0:
            return
        self._parts.append({name: np.asarray(cols[name], dtype) for name, dtype in self.COLUMNS})
        self._held += n
        self.rows += n
        if self._held > CAP:
            cols = self.columns()
            self._set(self._reduce(cols, bin_width(self._span(cols), N_BINS)))

    def _set(self, cols: dict[str, np.ndarray]) -> None:
        self._parts = [cols]
        self._held = len(cols["t"])
        self.reduced = True

    @staticmethod
    def _span(cols: dict[str, np.ndarray]) -> float:
        t = cols["t"]
        return float(max(t.max(), 0.0)) if len(t) else 0.0

    def columns(self) -> dict[str, np.ndarray]:
        """Everything held, as one array per column."""
        if len(self._parts) == 1:
            return self._parts[0]
        if not self._parts:
            return {name: np.zeros(0, dtype) for name, dtype in self.COLUMNS}
        cols = {name: np.concatenate([p[name] for p in self._parts]) for name, _ in self.COLUMNS}
        self._parts = [cols]
        return cols

    def __len__(self) -> int:
        return self._held

    def fit(self, width: int, span: float | None = None) -> dict[str, np.ndarray]:
        """The columns for a picture `width` pixels wide over [0, span] (default: the
        series' own span): reduced to one bin per pixel column when there are more
        rows than the picture can show apart, else as they are."""
        cols = self.columns()
        if len(cols["t"]) <= self.KEEP_RAW * width and not self.reduced:
            return cols
        w = bin_width(self._span(cols) if span is None else span, width)
        return self._reduce(cols, w)

    KEEP_RAW = 1

    def _reduce(self, cols: dict[str, np.ndarray], w: float) -> dict[str, np.ndarray]:
        raise NotImplementedError


class Points(_Series):
    """A value over time, reduced to each bin's first, last, lowest and highest point."""

    COLUMNS = (("t", "f8"), ("y", "f8"), ("frame", "i8"))
    KEEP_RAW = 4

    def add(self, t: np.ndarray, y: np.ndarray, frame: np.ndarray) -> None:
        self._add(t=t, y=y, frame=frame)

    def _reduce(self, cols, w):
        t, y = cols["t"], cols["y"]
        if len(t) == 0:
            return cols
        order, starts = _groups(t, w)
        ends = np.r_[starts[1:], len(order)] - 1
        first, last = order[starts], order[ends]
        # lowest/highest: sort each bin's rows by value (bins stay in order)
        b = np.floor(t[order] / w)
        by_val = order[np.lexsort((y[order], b))]
        low, high = by_val[starts], by_val[ends]
        keep = np.unique(np.concatenate([first, last, low, high]))
        keep = keep[np.argsort(t[keep], kind="stable")]
        return {name: col[keep] for name, col in cols.items()}


class Spans(_Series):
    """A range [lo, hi) over time, reduced to each bin's lowest start and highest end."""

    COLUMNS = (("t", "f8"), ("t1", "f8"), ("lo", "f8"), ("hi", "f8"), ("n", "i8"),
               ("frame", "i8"), ("frame1", "i8"))

    def add(self, t: np.ndarray, lo: np.ndarray, hi: np.ndarray, frame: np.ndarray) -> None:
        self._add(t=t, t1=t, lo=lo, hi=hi, n=np.ones(len(t), np.int64), frame=frame, frame1=frame)

    def _reduce(self, cols, w):
        if len(cols["t"]) == 0:
            return cols
        order, starts = _groups(cols["t"], w)
        s = {name: col[order] for name, col in cols.items()}
        return {
            "t": np.minimum.reduceat(s["t"], starts),
            "t1": np.maximum.reduceat(s["t1"], starts),
            "lo": np.minimum.reduceat(s["lo"], starts),
            "hi": np.maximum.reduceat(s["hi"], starts),
            "n": np.add.reduceat(s["n"], starts),
            "frame": np.minimum.reduceat(s["frame"], starts),
            "frame1": np.maximum.reduceat(s["frame1"], starts),
        }


class Sums(_Series):
    """A quantity over time (bytes), summed per bin; `rate` divides by the bin's width."""

    COLUMNS = (("t", "f8"), ("v", "f8"))

    def add(self, t: np.ndarray, v: np.ndarray) -> None:
        self._add(t=t, v=v)

    def _reduce(self, cols, w):
        if len(cols["t"]) == 0:
            return cols
        order, starts = _groups(cols["t"], w)
        st, sv = cols["t"][order], cols["v"][order]
        return {"t": np.floor(st[starts] / w) * w, "v": np.add.reduceat(sv, starts)}

    def rate(self, span: float, bins: int, window: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(t, per-second rate, averaging window) over [0, span]: the sums per bin of
        `span / bins` seconds (a power of two), averaged over the `window` seconds
        (at least one bin) that end at each bin's end; bins without rows count 0."""
        cols = self.columns()
        w = bin_width(span, bins)
        if self.reduced:   # bins cannot be split: never finer than what was kept
            w = max(w, bin_width(self._span(cols), N_BINS))
        r = self._reduce(cols, w)
        k = np.floor(r["t"] / w).astype(np.int64)
        dense = np.zeros(int(max(span / w, k.max(initial=0))) + 1)
        np.add.at(dense, np.clip(k, 0, None), r["v"])
        m = max(1, int(round(window / w)))
        csum = np.r_[0.0, np.cumsum(dense)]
        idx = np.arange(1, len(dense) + 1)
        moving = (csum[idx] - csum[np.maximum(idx - m, 0)]) / (m * w)
        t = np.minimum(np.arange(1, len(dense) + 1) * w, max(span, w))
        return t, moving, m * w


class Marks:
    """Events, every one kept: time, a value or range, and the frame."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, t: np.ndarray, y: np.ndarray, frame: np.ndarray, y2: np.ndarray | None = None) -> None:
        if len(t) == 0:
            return
        y = np.asarray(y, "f8")
        self._parts.append((np.asarray(t, "f8"), y, np.asarray(y if y2 is None else y2, "f8"),
                            np.asarray(frame, "i8")))

    def columns(self) -> dict[str, np.ndarray]:
        if not self._parts:
            return {"t": np.zeros(0), "y": np.zeros(0), "y2": np.zeros(0),
                    "frame": np.zeros(0, np.int64)}
        if len(self._parts) > 1:
            self._parts = [tuple(np.concatenate(c) for c in zip(*self._parts))]
        t, y, y2, frame = self._parts[0]
        return {"t": t, "y": y, "y2": y2, "frame": frame}

    def __len__(self) -> int:
        return sum(len(p[0]) for p in self._parts)
