"""Looked at in a real browser: every graph kind, as SVG (matplotlib) and as HTML (graph.js),
opens in headless Chromium without a console error, shows one plot per graph, and is
photographed (the screenshots are kept in the test's folder; docs/graph-*.png are two of
them). The Chromium is Debian's, driven over the DevTools pipe (tests/chromium.py)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from graph_synth import bulk_pcap
from tcpscope.present.graph import graphs, html_page, render

KINDS = ["stevens", "tcptrace", "throughput", "rtt", "window", "slidingwindow"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("graph-browser")
    cap = bulk_pcap(d / "bulk.pcap", 2000, loss_every=700, ce_every=555)
    out = {}
    for lang in ("en", "zh"):
        figs = graphs(cap, 0, KINDS, frames=[1200], lang=lang)
        for fig in figs:
            p = d / f"{fig.kind}-{lang}.svg"
            p.write_bytes(render(fig, "svg"))
            out[p.stem + ".svg"] = p
            h = d / f"{fig.kind}-{lang}.html"
            h.write_text(html_page([fig], lang=lang), encoding="utf-8")
            out[h.stem + ".html"] = h
        page = d / f"all-{lang}.html"
        page.write_text(html_page(figs, lang=lang), encoding="utf-8")
        out[page.stem + ".html"] = page
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("kind", KINDS)
def test_html_graph_in_chromium(browser, pages, kind, lang):
    page = browser.open(pages[f"{kind}-{lang}.html"])
    assert page.errors == []
    assert page.eval("document.querySelectorAll('figure.tcpscope-graph[data-ready]').length") == 1
    assert page.eval("document.querySelectorAll('figure.tcpscope-graph svg.tcpscope-plot').length") == 1
    # every layer is drawn: a path per layer of a time graph, rectangles for the sliding window
    drawn = page.eval("document.querySelectorAll('svg.tcpscope-plot g[clip-path] path').length")
    bands = page.eval("document.querySelectorAll('svg.tcpscope-plot g[clip-path] rect').length")
    layers = page.eval("JSON.parse(document.querySelector('script.tcpscope-data').textContent).layers.length")
    assert (bands >= 3) if kind == "slidingwindow" else (drawn == layers >= 2)
    assert page.eval("document.querySelectorAll('.tcpscope-legend li').length") >= 2
    shot = page.screenshot(pages[f"{kind}-{lang}.html"].with_suffix(".png"))
    w, h = png_size(shot.read_bytes())
    assert w >= 1000 and h >= 500


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("kind", KINDS)
def test_svg_graph_in_chromium(browser, pages, kind, lang):
    page = browser.open(pages[f"{kind}-{lang}.svg"])
    assert page.errors == []
    assert page.eval("document.documentElement.tagName") == "svg"
    assert page.eval("document.documentElement.querySelectorAll('path').length") > 20
    shot = page.screenshot(pages[f"{kind}-{lang}.svg"].with_suffix(".svg.png"))
    assert png_size(shot.read_bytes())[0] >= 1000


def test_all_graphs_on_one_page(browser, pages):
    page = browser.open(pages["all-en.html"])
    assert page.errors == []
    n = len(KINDS)
    assert page.eval("document.querySelectorAll('figure.tcpscope-graph svg.tcpscope-plot').length") == n
    # the page reacts: zoom with the wheel, then a double-click restores the first view
    before = page.eval("document.querySelector('svg.tcpscope-plot path').getAttribute('d').length")
    page.eval("""(() => { const s = document.querySelectorAll('svg.tcpscope-plot')[1];
        const r = s.getBoundingClientRect();
        s.dispatchEvent(new WheelEvent('wheel', {deltaY: -500, clientX: r.left + 400, clientY: r.top + 200,
                                                 bubbles: true, cancelable: true}));
        s.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 400, clientY: r.top + 300, bubbles: true}));
        s.dispatchEvent(new MouseEvent('dblclick', {bubbles: true})); })()""")
    assert page.errors == []
    assert page.eval("document.querySelector('svg.tcpscope-plot path').getAttribute('d').length") == before
    page.screenshot(pages["all-en.html"].with_suffix(".png"))
