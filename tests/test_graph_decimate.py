"""Per-pixel decimation: bounded memory while streaming, extremes and marks kept, and
reducing in steps gives what reducing at once would."""
from __future__ import annotations

import numpy as np
import pytest

from tcpscope.present.graph.decimate import CAP, N_BINS, Marks, Points, Spans, Sums, bin_width

RNG = np.random.default_rng(7)


def feed(series, n: int, chunk: int = 50_000, **cols):
    for i in range(0, n, chunk):
        series.add(**{k: v[i:i + chunk] for k, v in cols.items()})
    return series


def walk(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.sort(RNG.uniform(0, 60, n))
    y = np.cumsum(RNG.integers(0, 3000, n)).astype(float)
    y[RNG.integers(0, n, 50)] -= 5e6          # a few deep outliers
    return t, y, np.arange(1, n + 1)


def test_points_stay_bounded_and_keep_the_extremes():
    t, y, f = walk(1_000_000)
    p = Points()
    for i in range(0, len(t), 65_536):
        p.add(t[i:i + 65_536], y[i:i + 65_536], f[i:i + 65_536])
        assert len(p) <= CAP + 65_536 + 4 * N_BINS        # never the whole stream
    assert p.rows == len(t) and p.reduced
    out = p.fit(1000, 60.0)
    assert len(out["t"]) <= 4 * 1024
    assert out["y"].min() == y.min() and out["y"].max() == y.max()
    assert out["t"][0] == t[0] and out["t"][-1] == t[-1]
    # per pixel column: the lowest and highest values of that column are there
    w = bin_width(60.0, 1000)
    col = np.floor(t / w)
    for c in np.unique(col)[::97]:
        sel = col == c
        kept = out["y"][np.floor(out["t"] / w) == c]
        assert kept.min() == y[sel].min() and kept.max() == y[sel].max()


def test_reducing_in_steps_equals_reducing_at_once():
    t, y, f = walk(300_000)
    streamed = feed(Points(), len(t), t=t, y=y, frame=f).fit(800, 60.0)
    at_once = Points()._reduce({"t": t, "y": y, "frame": f}, bin_width(60.0, 800))
    for k in ("t", "y", "frame"):
        assert np.array_equal(streamed[k], at_once[k]), k


def test_spans_merge_per_bin():
    n = 200_000
    t = np.sort(RNG.uniform(0, 10, n))
    lo = np.arange(n, dtype=float) * 1448
    s = feed(Spans(), n, t=t, lo=lo, hi=lo + 1448, frame=np.arange(1, n + 1))
    out = s.fit(500, 10.0)
    assert len(out["t"]) <= 512
    assert out["n"].sum() == n
    assert out["lo"].min() == 0 and out["hi"].max() == n * 1448
    assert out["frame"].min() == 1 and out["frame1"].max() == n


def test_few_rows_are_drawn_as_they_are():
    p = Points()
    p.add(np.array([0.0, 1.0, 2.0]), np.array([5.0, 3.0, 4.0]), np.array([1, 2, 3]))
    out = p.fit(1000)
    assert out["y"].tolist() == [5.0, 3.0, 4.0] and not p.reduced


def test_marks_are_never_dropped():
    m = Marks()
    for i in range(30):
        m.add(np.full(1000, float(i)), np.arange(1000.0), np.arange(1000) + i * 1000)
    assert len(m) == 30_000 and len(m.columns()["t"]) == 30_000


@pytest.mark.parametrize("span", [0.001, 1.0, 100.0])
def test_sums_rate_integrates_to_the_total(span):
    n = 100_000
    t = np.sort(RNG.uniform(0, span, n))
    v = RNG.integers(1, 1500, n).astype(float)
    s = feed(Sums(), n, t=t, v=v)
    tt, rate, used = s.rate(span, 1000, 0)   # window 0: one bin
    assert abs((rate * used).sum() - v.sum()) < 1e-6 * v.sum()
    assert len(tt) <= 1025
