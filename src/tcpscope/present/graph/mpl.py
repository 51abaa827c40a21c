"""PNG and SVG with matplotlib (the optional extra ``tcpscope[graph]``).

Draws a `Figure` layer by layer, each in one matplotlib artist (a path with
gaps, a marker line, a collection), so a picture's cost is its pixel columns,
not its packets. No pyplot and no global state: a `matplotlib.figure.Figure`
per call, settings in a `rc_context`. Chinese labels use Noto Sans CJK
(Debian's fonts-noto-cjk) as the fallback font after DejaVu Sans; SVG text is
drawn as paths, so a viewer needs no font.
"""
from __future__ import annotations

import io
from functools import lru_cache

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, FuncFormatter

from .figure import STYLE, Figure, Layer, Style

__all__ = ["render_mpl", "CJK_FONTS"]

#: fonts that hold the Chinese labels, in order of preference (Debian: fonts-noto-cjk)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei")
_SIZE = (13.0, 7.4)     # inches
_DPI = 110


@lru_cache(maxsize=1)
def _cjk_family() -> str | None:
    """The first CJK font matplotlib knows; fonts installed after its font cache was
    built are registered from the system's font folders."""
    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    if known() is None:
        for path in font_manager.findSystemFonts(fontext="ttf") + font_manager.findSystemFonts(fontext="otf"):
            if "NotoSansCJK" in path or "wqy-zenhei" in path:
                font_manager.fontManager.addfont(path)
    return known()


def _rc() -> dict:
    family = ["DejaVu Sans"]
    cjk = _cjk_family()
    if cjk:
        family.append(cjk)
    return {"font.family": family, "svg.fonttype": "path", "svg.hashsalt": "tcpscope",
            "path.simplify": True, "agg.path.chunksize": 20000}


def _gaps(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments (x0,y0)-(x1,y1) as one polyline broken by NaNs."""
    n = len(x0)
    x = np.empty(3 * n)
    y = np.empty(3 * n)
    x[0::3], x[1::3], x[2::3] = x0, x1, np.nan
    y[0::3], y[1::3], y[2::3] = y0, y1, np.nan
    return x, y


def _draw(ax, ly: Layer, st: Style) -> None:
    c = ly.cols
    if ly.draw in ("ibeam", "bar"):
        if not len(ly):
            return
        x = np.where(c["n"] > 1, (c["t"] + c["t1"]) / 2, c["t"])
        one = c["n"] == 1
        for sel, lw, cap in ((one, st.lw, "butt"), (~one, max(st.lw, 2.0), "projecting")):
            if sel.any():   # a bin of many segments: at least a visible dot per pixel column
                gx, gy = _gaps(x[sel], c["lo"][sel], x[sel], c["hi"][sel])
                ax.plot(gx, gy, color=st.color, lw=lw, zorder=st.z, solid_capstyle=cap)
        if ly.draw == "ibeam" and one.any():
            ax.plot(np.r_[x[one], x[one]], np.r_[c["lo"][one], c["hi"][one]], ls="none", marker="_",
                    ms=5, mew=st.lw, color=st.color, zorder=st.z)
    elif ly.draw in ("step", "line"):
        ax.plot(c["t"], c["y"], color=st.color, lw=st.lw, zorder=st.z, ls="--" if st.dash else "-",
                drawstyle="steps-post" if ly.draw == "step" else "default")
    elif ly.draw in ("dots", "marker"):
        marker = st.marker or "o"
        ax.plot(c["t"], c["y"], ls="none", marker=marker, ms=st.ms, color=st.color, zorder=st.z,
                mew=1.2 if marker in ("x", "X", "|", "_", "4", "+") else 0.5)


def _handle(key: str, draw: str, label: str):
    st = STYLE[key]
    if draw in ("span", "band"):
        return Patch(facecolor=st.color, edgecolor="#666666", lw=0.5, label=label)
    if draw in ("ibeam", "bar"):
        return Line2D([], [], color=st.color, lw=max(st.lw, 1.2), marker="_" if draw == "ibeam" else "",
                      ms=8, mew=max(st.lw, 1.2), label=label)
    if draw in ("dots", "marker"):
        return Line2D([], [], ls="none", marker=st.marker or "o", color=st.color, ms=max(st.ms, 5),
                      mew=1.2, label=label)
    return Line2D([], [], color=st.color, lw=max(st.lw, 1.2), ls="--" if st.dash else "-", label=label)


def _numbers(axis) -> FuncFormatter:
    """Tick labels of an axis: digits grouped (1,448,000) while its values stay below
    10^7, else 12.5 M for every tick (a label stays short, and one axis one style)."""
    eng = EngFormatter(sep=" ")

    def label(v: float, pos=None) -> str:
        lo, hi = axis.get_view_interval()
        if max(abs(lo), abs(hi)) >= 1e7:
            return eng(v, pos)
        return f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:g}"

    return FuncFormatter(label)


def _time_plot(fig: MplFigure, f: Figure) -> None:
    ax = fig.add_axes((0.075, 0.30, 0.85, 0.64))
    ax2 = ax.twinx() if any(ly.axis == 1 and len(ly) for ly in f.layers) else None
    for a, b, key in f.spans:
        ax.axvspan(a, b, color=STYLE[key].color, lw=0, zorder=0)
    for ly in f.layers:
        _draw(ax2 if ly.axis == 1 and ax2 is not None else ax, ly, STYLE[ly.key])
    ax.set_xlabel(f.xlabel)
    ax.set_ylabel(f.ylabel)
    ax.set_title(f.title, fontsize=11, loc="left")
    ax.grid(True, color="#e5e5e5", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.margins(x=0.01, y=0.03)
    unit = {"throughput": EngFormatter(unit="bit/s", places=0)}.get(f.kind)
    ax.yaxis.set_major_formatter(unit or _numbers(ax.yaxis))
    if ax2 is not None:
        ax2.set_ylabel(f.y2label)
        ax2.yaxis.set_major_formatter(_numbers(ax2.yaxis))
    handles = [_handle(k, d, lab) for k, d, lab in f.legend()]
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.07, 0.215), ncol=3,
                   fontsize=8, frameon=False, borderaxespad=0, columnspacing=1.5)
    if f.notes:
        fig.text(0.075, 0.012, "\n".join(f.notes), fontsize=8, color="#444444", va="bottom")


def _window_plot(fig: MplFigure, f: Figure) -> None:
    """The sliding window: bands of byte ranges on up to three rows (the sender's byte
    space, the receiver's window, the congestion window), the edges labelled."""
    ax = fig.add_axes((0.14, 0.42, 0.82, 0.44))
    ys = {0: 2.0, 1: 1.0, 2: 0.0}
    rows = sorted({int(r) for ly in f.layers if ly.draw == "band" for r in ly.cols["row"]})
    for ly in f.layers:
        if ly.draw == "band":
            st = STYLE[ly.key]
            for lo, hi, row in zip(ly.cols["lo"], ly.cols["hi"], ly.cols["row"]):
                h = 0.8 if row == 0 else 0.35
                ax.broken_barh([(lo, hi - lo)], (ys[int(row)] - h / 2, h), facecolors=st.color,
                               edgecolors="#555555", linewidth=0.6, zorder=2)
    edges = [ly for ly in f.layers if ly.draw == "edge"]
    for i, ly in enumerate(edges):
        x = float(ly.cols["x"][0])
        ax.axvline(x, ymax=0.93, color="#000000", lw=1.0, ls="--", zorder=3)
        ax.annotate(ly.text, (x, 2.55 + 0.3 * (i % 2)), ha="center", va="bottom", fontsize=8, zorder=4,
                    annotation_clip=False,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#999999", "lw": 0.5})
    ax.set_ylim(-0.4 if 2 in rows else 0.6, 3.2)
    ax.set_yticks([ys[r] for r in rows], [f.row_labels[r] for r in rows], fontsize=9)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(f.xlabel)
    ax.xaxis.set_major_formatter(_numbers(ax.xaxis))
    ax.set_title(f.title, fontsize=11, loc="left", pad=30)
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    handles = [_handle(k, d, lab) for k, d, lab in f.legend()]
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.14, 0.31), ncol=2,
                   fontsize=8.5, frameon=False)
    if f.notes:
        fig.text(0.14, 0.03, "\n".join(f.notes), fontsize=9, va="bottom", linespacing=1.5)


def render_mpl(f: Figure, fmt: str = "png") -> bytes:
    """The figure as the bytes of a PNG or SVG file."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown image format {fmt!r}; expected png or svg")
    with matplotlib.rc_context(_rc()):
        fig = MplFigure(figsize=(13.0, 6.4) if f.kind == "slidingwindow" else _SIZE, dpi=_DPI)
        if f.kind == "slidingwindow":
            _window_plot(fig, f)
        else:
            _time_plot(fig, f)
        buf = io.BytesIO()
        meta = {"Date": None} if fmt == "svg" else {"Software": "tcpscope"}
        fig.savefig(buf, format=fmt, metadata=meta, facecolor="white")
    return buf.getvalue()
