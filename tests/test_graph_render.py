"""Every graph kind renders: PNG and SVG through matplotlib, HTML through graph.js's data;
Chinese labels with a CJK font; the cwnd graph from the sender model's fields."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from graph_synth import bulk_pcap
from tcpscope.present.graph import KINDS, GraphUnavailable, graphs, html_page, render
from tcpscope.present.graph.html import figure_json
from tcpscope.present.graph.rates import CC_PHASES, Cwnd
from tcpscope.present.graph.series import ANN_FIELDS, REC_FIELDS, SENDER_FIELDS, Context, Rows
from tcpscope.present.i18n import catalogue
from tcpscope.wire.record import RECORD_DTYPE

TIME_KINDS = [k for k in KINDS if k not in ("cwnd", "slidingwindow")]


@pytest.fixture(scope="module")
def transfer(tmp_path_factory) -> Path:
    return bulk_pcap(tmp_path_factory.mktemp("graph") / "bulk.pcap", 3000, loss_every=1000,
                     ce_every=777)


@pytest.fixture(scope="module")
def figures(transfer):
    return {lang: dict(zip(TIME_KINDS + ["slidingwindow"],
                           graphs(transfer, 0, TIME_KINDS + ["slidingwindow"], frames=[1500], lang=lang)))
            for lang in ("en", "zh")}


@pytest.mark.parametrize("kind", TIME_KINDS + ["slidingwindow"])
def test_png_and_svg(figures, kind):
    fig = figures["en"][kind]
    png = render(fig, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    svg = render(fig, "svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert len(svg) < 3_000_000


@pytest.mark.parametrize("kind", TIME_KINDS + ["slidingwindow"])
def test_chinese_labels(figures, kind):
    from tcpscope.present.graph.mpl import _cjk_family

    fig = figures["zh"][kind]
    assert re.search(r"[\u4e00-\u9fff]", fig.title + fig.xlabel)
    assert all(re.search(r"[\u4e00-\u9fff]", label) for _, _, label in fig.legend()
               if label not in ("SYN", "FIN", "RST"))
    if _cjk_family() is None:
        pytest.skip("no CJK font (Debian: fonts-noto-cjk; scripts/setup --test installs it)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")     # matplotlib warns of every glyph it cannot draw
        assert render(fig, "png")[:4] == b"\x89PNG"


def test_html_page_holds_every_graph_and_no_network(figures):
    figs = list(figures["en"].values())
    page = html_page(figs)
    assert page.count('<figure class="tcpscope-graph"') == len(figs)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)     # opens offline
    assert "http://www.w3.org/2000/svg" in page                   # the SVG namespace, not a fetch
    for m in re.finditer(r'<script type="application/json" class="tcpscope-data">(.*?)</script>', page):
        data = json.loads(m.group(1).replace("<\\/", "</"))
        assert data["layers"] and data["legend"]


def test_html_data_is_the_figure(figures):
    fig = figures["en"]["tcptrace"]
    data = figure_json(fig)
    by_key = {ly["key"]: ly for ly in data["layers"]}
    for ly in fig.layers:
        if len(ly):
            assert by_key[ly.key]["cols"]["t"] == pytest.approx(ly.cols["t"].tolist(), abs=1e-9)


def test_cwnd_needs_the_sender_model(transfer):
    with pytest.raises(GraphUnavailable, match="cwnd_est"):
        graphs(transfer, 0, ["cwnd"])


def _sender_rows(n: int) -> Rows:
    """Rows as the pipeline gives them once the analysis has the sender model's fields."""
    ann = np.zeros(n, [(f, "i8") for f in ANN_FIELDS] + [("cwnd_est", "f8"), ("ssthresh_est", "f8"),
                                                        ("in_flight", "i8"), ("cc_phase", "u1"),
                                                        ("limited_by", "u1")])
    rec = np.zeros(n, RECORD_DTYPE)
    ann["frame"] = np.arange(1, n + 1)
    ann["cwnd_est"] = np.r_[np.arange(10, 10 + n // 2), np.full(n - n // 2, 30.0)]
    ann["ssthresh_est"] = np.r_[np.full(n // 2, -1.0), np.full(n - n // 2, 21.0)]
    ann["in_flight"] = ann["cwnd_est"] * 1448
    phase = {p: i for i, p in enumerate(CC_PHASES)}
    ann["cc_phase"] = phase["slow_start"]
    ann["cc_phase"][n // 2:n // 2 + 5] = phase["fast_recovery"]
    ann["cc_phase"][n // 2 + 5:] = phase["congestion_avoidance"]
    rec["payload_len"] = 1448
    assert set(SENDER_FIELDS) <= set(ann.dtype.names) and set(REC_FIELDS) <= set(rec.dtype.names)
    return Rows.select(np.arange(n) / 1000, rec, ann, np.arange(n))


def test_cwnd_from_the_sender_models_fields():
    n = 40
    c = Cwnd()
    c.feed(_sender_rows(n))
    ctx = Context(0, 0, catalogue("en"), None, (n - 1) / 1000, n)
    fig = c.figure(ctx)
    ly = {x.key: x.cols for x in fig.layers}
    assert ly["cwnd"]["y"].tolist()[:3] == [10, 11, 12]
    assert ly["ssthresh"]["frame"].min() == n // 2 + 1
    assert ly["in_flight"]["y"].max() == 30 * 1448
    assert [(a, b, k) for a, b, k in fig.spans] == [
        (0.0, 0.02, "phase.slow_start"), (0.02, 0.025, "phase.fast_recovery"),
        (0.025, 0.039, "phase.congestion_avoidance")]
    assert ly["recovery"]["frame"].tolist() == [n // 2 + 1]
    assert {k for k, d, _ in fig.legend() if d == "span"} == {
        "phase.slow_start", "phase.fast_recovery", "phase.congestion_avoidance"}
    assert render(fig, "png")[:4] == b"\x89PNG"


@pytest.mark.parametrize("fmt", ["png", "svg", "html"])
def test_write_graph_by_extension(transfer, tmp_path, fmt):
    from tcpscope.present.graph import write_graph

    out = tmp_path / f"g.{fmt}"
    write_graph(transfer, 0, "tcptrace", out, direction="c2s")
    data = out.read_bytes()
    assert data[:4] == b"\x89PNG" if fmt == "png" else (b"<svg" in data[:400] or b"<!DOCTYPE html>" in data[:20])
    with pytest.raises(ValueError, match="extension"):
        write_graph(transfer, 0, "tcptrace", tmp_path / "g.pdf")
