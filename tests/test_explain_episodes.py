"""A long connection told by episodes, --frames, and the capture overview.

- the episodes told are the sender model's (analysis/congestion.py): every recovery told
  has the model's frames, losses and retransmissions, and those counted together add up
  to the rest; the phases' numbers are the round trips' sums;
- the story of a long transfer is short, whatever its length, and keeps the handshake
  and the teardown packet by packet; --frames tells a range packet by packet;
- a capture of more connections than explain tells gets an overview instead, whose
  counts are the connection table's.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner

import tcpscope
from conftest import CORPUS, FIXTURES
from graph_synth import bulk_pcap
from tcpscope.analysis import congestion
from tcpscope.cli import main
from tcpscope.present.explain import write_explain
from tcpscope.present.story import episodes as ep_mod
from tcpscope.present.story import build_story, collect
from tcpscope.present.story.episodes import Chapter, episode_items, is_long

ECHO = CORPUS / "zeek__echo-connections.pcap.gz"


@pytest.fixture(scope="module")
def bulk(tmp_path_factory):
    d = tmp_path_factory.mktemp("episodes")
    return bulk_pcap(d / "bulk.pcap", 3000, loss_every=400, ce_every=0)


def _model(path, stream=0):
    a = tcpscope.analyze(path, mode="improved")
    rows = a.annotations["stream"] == stream
    return a, ep_mod.Model(a.annotations[rows], a.records[rows], a.ts_ns[rows])


def _chapters(path, stream=0, mode="wireshark"):
    a, extra = collect(path, [stream], mode=mode)
    st = build_story(a, stream, extra)
    _, model = _model(path, stream)
    return st, episode_items(st, model, 8)


def test_long_story_is_told_by_the_models_episodes(bulk):
    st, items = _chapters(bulk)
    assert is_long(st)
    a, model = _model(bulk)
    eps = congestion.episodes(model.annotations, model.ts_ns, 0)
    assert eps, "the synthetic transfer has losses"
    told = [f.params for c in items if isinstance(c, Chapter) for f in c.facts
            if f.id in ("episode.recovery", "episode.recovery_open")]
    more = [f.params for c in items if isinstance(c, Chapter) for f in c.facts
            if f.id == "episode.more"]
    by_start = {e.start_frame: e for e in eps}
    for p in told:
        e = by_start[p["start"]]
        assert (p["lost"], p["retx"]) == (e.lost, e.retransmitted)
        assert p.get("end") == e.end_frame
        assert p["how"][0].id == f"episode.by.{e.trigger}"
    rest = [e for e in eps if e.start_frame not in {p["start"] for p in told}]
    if rest:
        assert more and more[0]["count"] == len(rest)
        assert more[0]["lost"] == sum(e.lost for e in rest)
        assert more[0]["retx"] == sum(e.retransmitted for e in rest)
    else:
        assert not more
    # the first told recoveries narrate the packet that began them, the others not
    rec = [c for c in items if isinstance(c, Chapter) and c.facts[0].id == "episode.recovery"]
    for k, c in enumerate(rec):
        want = [c.facts[0].params["start"]] if k < ep_mod.NARRATED else []
        assert [s.frame for s in c.steps] == want


def test_phases_are_the_round_trips(bulk):
    _, items = _chapters(bulk)
    _, m = _model(bulk)
    rounds = congestion.rounds(m.records, m.annotations, m.ts_ns, 0)
    phases = [f for c in items if isinstance(c, Chapter) for f in c.facts
              if f.id in ("episode.slow_start", "episode.steady")]
    assert phases
    assert sum(f.params["rounds"] for f in phases) == rounds.size
    assert sum(f.params["bytes"] for f in phases) == int(rounds["delivered"].sum())
    assert phases[0].params["first"] == int(rounds["frame"][0])
    steady = [f for f in phases if f.id == "episode.steady"]
    for f in steady:
        inside = rounds[rounds["frame"] >= f.params["first"]]
        assert f.params["hi"] == int(inside["cwnd"].max())


def test_long_story_is_short_and_keeps_both_ends(bulk):
    out = io.StringIO()
    write_explain(bulk, out, streams=[0])
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) <= 150, len(lines)
    assert "told by episodes" in text
    assert "three-way handshake is complete" in text
    # every packet: many more lines
    full = io.StringIO()
    write_explain(bulk, full, streams=[0], group_min=None)
    assert len(full.getvalue().splitlines()) > 10 * len(lines)
    zh = io.StringIO()
    write_explain(bulk, zh, streams=[0], lang="zh")
    assert "按阶段叙述" in zh.getvalue()


def test_frames_tells_a_range_packet_by_packet(bulk):
    out = io.StringIO()
    write_explain(bulk, out, streams=[0], frames=(100, 110))
    text = out.getvalue()
    heads = [int(ln.split()[0]) for ln in text.splitlines()
             if ln[:6].strip().isdigit() and "→" in ln and "│" not in ln]
    assert heads and all(100 <= f <= 110 for f in heads)
    assert "Frames 100–110" in text


def test_short_connections_keep_per_packet_narration():
    out = io.StringIO()
    write_explain(FIXTURES / "lossy_transfer.pcap", out, streams=[0])
    assert "told by episodes" not in out.getvalue()


def test_cli_frames_option(bulk):
    r = CliRunner().invoke(main, ["explain", str(bulk), "--stream", "0", "--frames", "50-60"])
    assert r.exit_code == 0, r.output
    assert "Frames 50–60" in r.output
    bad = CliRunner().invoke(main, ["explain", str(bulk), "--stream", "0", "--frames", "9-3"])
    assert bad.exit_code == 2


@pytest.mark.skipif(not ECHO.exists(), reason="shared capture missing")
def test_overview_of_many_connections():
    a = tcpscope.analyze(ECHO)
    n = int(a.connections.shape[0])
    assert n > 20
    out = io.StringIO()
    assert write_explain(ECHO, out) == 0
    text = out.getvalue()
    assert text.startswith("Capture overview\n")
    assert f"{n} TCP connections" in text
    assert len(text.splitlines()) < 80
    kinds = {}
    for life in a.lifecycles.values():
        kinds[life.handshake] = kinds.get(life.handshake, 0) + 1
    for kind, count in kinds.items():
        assert f": {count}\n" in text
    # no packet is narrated
    assert "→ server" not in text
    zh = io.StringIO()
    write_explain(ECHO, zh, lang="zh")
    assert zh.getvalue().startswith("抓包概览\n")


def test_few_connections_are_all_told():
    out = io.StringIO()
    told = write_explain(FIXTURES / "zero_window.pcap", out)
    assert told >= 1 and "Capture overview" not in out.getvalue()


def test_model_rows_of_a_second_engine_equal_improved_mode(bulk):
    """In wireshark mode the model comes from a second engine fed only the stream's
    packets: the same as the improved run's own."""
    from tcpscope.pipeline import Options, run

    w = ep_mod.ModelRows([0], "wireshark")
    i = ep_mod.ModelRows([0], "improved")
    run(bulk, [w], Options(mode="wireshark"))
    run(bulk, [i], Options(mode="improved"))
    for col in ("cwnd_est", "cc_event", "cc_round", "cc_phase", "frame"):
        assert np.array_equal(w.model.annotations[col], i.model.annotations[col]), col


def test_lazy_long_story_tells_what_the_full_one_tells(bulk):
    """build_long_story narrates only the packets it tells; its chapters, the packets it
    narrates, its introduction and summary are those of the story built packet by packet."""
    a, extra = collect(bulk, [0])
    full = build_story(a, 0, extra)
    _, model = _model(bulk)
    full.items = episode_items(full, model, 8)
    lazy = ep_mod.build_long_story(a, 0, extra, model)
    assert lazy.intro == full.intro and lazy.summary == full.summary

    def shape(items):
        return [(type(i).__name__, i.facts if isinstance(i, Chapter) else None,
                 [s.frame for s in i.steps] if isinstance(i, Chapter) else i.frame
                 if not hasattr(i, "steps") else [s.frame for s in i.steps])
                for i in items]

    assert shape(lazy.items) == shape(full.items)
    # the packets of the handshake are told alike
    assert lazy.items[0].facts == full.items[0].facts


def test_ladder_of_a_long_connection_folds_like_its_story(bulk, tmp_path):
    r = CliRunner().invoke(main, ["ladder", str(bulk), "--stream", "0"])
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.output.splitlines() if "│" in ln]
    assert 5 < len(rows) < 40
    full = CliRunner().invoke(main, ["ladder", str(bulk), "--stream", "0", "--all"])
    assert len([ln for ln in full.output.splitlines() if "│" in ln]) > 4000
    svg = tmp_path / "l.svg"
    r = CliRunner().invoke(main, ["ladder", str(bulk), "--stream", "0", "--format", "svg",
                                  "-o", str(svg)])
    assert r.exit_code == 0 and svg.stat().st_size < 100_000
