"""Every number an explanation states is the analysis's number.

Two checks, on the project's fixtures and a few shared captures:

1. each fact's parameters against the analysis they came from -- read independently here
   from `tcpscope.analyze(path)` (not the story's own reader): sequence and ACK numbers from
   the records and annotations, the arithmetic a fact states (ack = ISN + 1, ack = seq + len,
   ack = FIN + 1, next = seq + len, the fast retransmit resends the byte the duplicate ACKs
   ask for, ...), times from the capture timestamps, state changes from the lifecycle;
2. the rendered text, in both languages, against the facts: every number in a sentence is
   a number of the template itself (RFC sections, "2 MSL") or of a parameter.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pytest

import tcpscope
from conftest import CORPUS, FIXTURES
from tcpscope.analysis.rules import RULES_BY_CODE
from tcpscope.analysis.annotation import FLAG_BIT
from tcpscope.present.i18n import LANGS, PLACEHOLDER, catalogue
from tcpscope.present.story import Run, build_stories

U32 = 1 << 32
CAPTURES = sorted(p for p in FIXTURES.glob("*.pcap*")) + [
    CORPUS / name for name in (
        "zeek__tcp_retransmit-fast009.pcap", "seladb__one_tcp_stream.pcap",
        "zeek__tcp_tcp-fast-open.pcap", "zeek__tcp_missing-syn.pcap",
        "zeek__tcp_fin_retransmission.pcap", "seladb__one_tcp_stream_max_seq.pcap",
        "zeek__tcp_option-sack.pcap", "zeek__tcp_window-scale-range.pcap",
        "zeek__tcp_ssh-dups.pcap", "seladb__unidirectional_tcp_stream_with_missing_packet.pcap",
    ) if (CORPUS / name).exists()]
MAX_STREAMS = 12


@lru_cache(maxsize=4)
def analysed(path: str):
    a = tcpscope.analyze(path)
    streams = sorted({int(s) for s in a.annotations["stream"] if s >= 0})[:MAX_STREAMS]
    keep = np.isin(a.annotations["stream"], streams)
    rows = np.flatnonzero(keep)
    # Restrict the analysis to those streams (the story reads only its stream's rows).
    sub = tcpscope.analysis.Analysis(
        path=a.path, mode=a.mode, records=a.records[rows], annotations=a.annotations[rows],
        ts_ns=a.ts_ns[rows], frames=a.frames[rows], iface=a.iface[rows],
        connections=a.connections, stats=a.stats, client_state=a.client_state[rows],
        server_state=a.server_state[rows],
        events={int(np.searchsorted(rows, r)): ev for r, ev in a.events.items() if keep[r]},
        lifecycles=a.lifecycles)
    return sub, build_stories(sub)


class Rows:
    """The analysis by frame number."""

    def __init__(self, a) -> None:
        self.a = a
        self.by_frame = {int(f): i for i, f in enumerate(a.frames.tolist())}

    def __call__(self, frame: int) -> int:
        return self.by_frame[frame]

    def rec(self, frame: int, name: str) -> int:
        return int(self.a.records[self(frame)][name])

    def ann(self, frame: int, name: str) -> int:
        return int(self.a.annotations[self(frame)][name])

    def ts(self, frame: int) -> int:
        return int(self.a.ts_ns[self(frame)])


def close(x: float, y: float) -> bool:
    return abs(x - y) < 1e-9


def first_syn_seq(story, side: str) -> int:
    for s in story.steps:
        if s.sender == side and "S" in s.flags:
            return s.seq
    raise AssertionError(f"no SYN from the {side}")


def check_fact(f, step, story, R: Rows, life) -> None:  # noqa: C901 - one branch per fact
    p = f.params
    fr = step.frame
    row = R(fr)
    rec, ann = R.a.records[row], R.a.annotations[row]
    seq, ack = int(rec["seq"]), int(rec["ack"])
    rel_seq, rel_ack = int(ann["rel_seq"]), int(ann["rel_ack"])
    plen = int(rec["payload_len"])
    i = f.id

    if "rule" in p and i.startswith("anom."):
        flag = {"anom.retransmission_ctl": "retransmission",
                "anom.retransmission_noev": "retransmission",
                "anom.lost_segment_noev": "lost_segment",
                "anom.lost_segment_reordered": "lost_segment",
                "anom.lost_segment_upstream": "lost_segment",
                "anom.lost_segment_resent": "lost_segment",
                "anom.lost_segment_missed": "lost_segment",
                "anom.retx_first_copy": "retransmission",
                "anom.zero_window_probe_empty": "zero_window_probe",
                "anom.window_update_noev": "window_update",
                "anom.duplicate_ack_again": "duplicate_ack",
                "anom.fast_retransmission_noev": "fast_retransmission"}.get(i, i[5:])
        if flag != "other":
            assert RULES_BY_CODE[int(ann["rule"][FLAG_BIT[flag]])].id == p["rule"], (fr, i)
    if i in ("syn.first", "syn.simultaneous", "syn.retransmit"):
        assert p["isn"] == seq and "S" in step.flags
    if i == "syn.retransmit":
        assert close(p["dt"], (R.ts(fr) - R.ts(p["prev_frame"])) / 1e9)
        assert R.rec(p["prev_frame"], "seq") == seq
        assert p["copy"] == sum(1 for s in story.steps if s.sender == step.sender
                                and s.flags == "S" and s.frame <= fr)
    if i == "syn.data":
        assert p["len"] == plen and p["last"] == plen
    if i == "syn.win":
        assert p["win"] == int(rec["win"])
    if i in ("synack.reply", "synack.reply_tfo", "synack.odd", "synack.reply_unseen",
             "synack.simultaneous"):
        assert p["isn"] == seq and p["ack"] == ack
    if i in ("synack.reply", "synack.simultaneous"):
        assert p["peer_isn"] == first_syn_seq(story, p["peer"])
        assert p["ack"] == (p["peer_isn"] + 1) % U32
    if i == "synack.reply_tfo":
        assert p["peer_isn"] == first_syn_seq(story, p["peer"])
        assert p["ack"] == (p["peer_isn"] + 1 + p["len"]) % U32
    if i == "synack.retransmit":
        assert close(p["dt"], (R.ts(fr) - R.ts(p["prev_frame"])) / 1e9)
    if i == "opt.mss":
        assert p["mss"] == int(rec["mss"])
    if i in ("opt.wscale", "opt.wscale_zero"):
        assert p["shift"] == min(int(rec["wscale"]), 14) and p["factor"] == 2 ** p["shift"]
    if i == "opt.ts":
        assert p["tsval"] == int(rec["ts_val"])
    if i == "opt.reply":
        for sf in p["items"]:
            check_fact(type(f)(sf.id.replace("opt.short.", "opt."), sf.params), step, story, R,
                       life)
    if i == "nego.mss":
        assert p["mss"] == life.negotiated["mss"][0 if p["side"] == "client" else 1]
        assert p["peer_mss"] == life.negotiated["mss"][1 if p["side"] == "client" else 0]
    if i == "nego.wscale":
        ws = life.negotiated["wscale"]
        assert (p["factor"], p["peer_factor"]) == (2 ** ws[0], 2 ** ws[1])
    if i == "hs.ack":
        assert p["ack"] == ack and p["rel_ack"] == rel_ack == 1
        assert p["peer_isn"] == first_syn_seq(story, p["peer"])
        assert p["ack"] == (p["peer_isn"] + 1) % U32
    if i == "hs.complete":
        assert close(p["rtt"], int(ann["irtt_ns"]) / 1e9)
    if i in ("data.send", "data.send_bin"):
        assert p["len"] == plen and p["rel_seq"] == rel_seq
        assert p["last"] == rel_seq + plen - 1 and p["next"] == rel_seq + plen
        assert p["next"] == int(ann["next_rel_seq"]) - (1 if "F" in step.flags else 0)
    if i == "data.again":
        assert p["len"] == plen and p["rel_seq"] == rel_seq and p["last"] == rel_seq + plen - 1
        assert p["high"] >= rel_seq + plen
        assert any(s.sender == step.sender and s.frame < fr and s.rel_seq is not None
                   and s.rel_seq + s.length == p["high"] for s in story.steps)
    if i == "data.first":
        assert p["seq"] == seq and p["seq"] == (p["isn"] + 1) % U32
        assert p["isn"] == first_syn_seq(story, step.sender)
    if i == "data.continues":
        assert p["prev_seq"] + p["prev_len"] == p["rel_seq"] == rel_seq
        assert R.ann(p["prev_frame"], "rel_seq") == p["prev_seq"]
        assert R.rec(p["prev_frame"], "payload_len") == p["prev_len"]
    if i in ("ack.data", "ack.data_karn"):
        assert p["rel_ack"] == rel_ack == p["seq"] + p["len"]
        assert R.ann(p["frame"], "rel_seq") == p["seq"]
        assert R.rec(p["frame"], "payload_len") == p["len"]
    if i == "ack.data" and int(ann["acked_frame"]) == p["frame"]:
        assert close(p["rtt"], int(ann["ack_rtt_ns"]) / 1e9)
    elif i == "ack.data":
        # improved mode: a later copy of the same bytes, the one whose TSval the ACK echoes
        assert R.a.mode == "improved"
        assert R.ann(int(ann["acked_frame"]), "rel_seq") == p["seq"] and p["frame"] > int(
            ann["acked_frame"])
        assert R.rec(p["frame"], "ts_val") == int(rec["ts_ecr"])
        assert close(p["rtt"], (R.ts(fr) - R.ts(p["frame"])) / 1e9)
    if i in ("ack.upto", "ack.first", "ack.same"):
        assert p["rel_ack"] == rel_ack
    if i == "ack.delayed":
        assert p["rtt"] > 10 * p["irtt"]
        assert R.a.mode != "improved" or p["rtt"] <= 0.5   # RFC 1122 §4.2.3.2
    if i == "ack.fin":
        assert p["rel_ack"] == rel_ack == p["fin_seq"] + 1
        f_row = R(p["frame"])
        assert int(R.a.records[f_row]["tcp_flags"]) & 1
        assert int(R.a.annotations[f_row]["rel_seq"]) + int(
            R.a.records[f_row]["payload_len"]) == p["fin_seq"]
    if i == "win.unknown":
        assert p["win"] == int(rec["win"]) and int(ann["win_scale"]) == -1
    if i == "win.scaled":
        assert p["win"] == int(rec["win"]) and p["scaled"] == int(ann["win_scaled"])
        assert p["win"] * p["factor"] == p["scaled"]
    if i in ("fin.send", "fin.again"):
        assert p["fin_seq"] == rel_seq + plen and p["next"] == p["fin_seq"] + 1
        assert int(rec["tcp_flags"]) & 1
    if i == "fin.retransmit":
        assert p["fin_seq"] == rel_seq + plen
    if i == "fin.ack_missed":
        # the sender's IPv4 IDs: this frame's, its previous packet's, the count between
        assert p["ip_id"] == int(rec["ip_id"]) and p["count"] == int(ann["ip_id_gap"]) >= 1
        assert R.rec(p["prev_frame"], "ip_id") == p["prev_id"] and p["prev_frame"] < fr
        assert (p["ip_id"] - p["prev_id"]) % 65536 == p["count"] + 1
        assert int(rec["tcp_flags"]) & 1
        assert any(t.frame == fr and t.reason == "infer.fin_ack_not_captured"
                   for t in life.transitions)
    if i == "rst.refuse":
        assert p["ack"] == ack == (p["peer_isn"] + 1) % U32
        assert p["peer_isn"] == first_syn_seq(story, "client")
        assert p["port"] == int(rec["sport"])
    if i == "rst.data":
        assert p["len"] == plen
    if i == "anom.retransmission":
        assert p["rel_seq"] == rel_seq and p["last"] == rel_seq + plen - 1
        assert close(p["dt"], (R.ts(fr) - R.ts(p["orig"])) / 1e9)
    if i == "anom.retransmission_ctl":
        assert close(p["dt"], (R.ts(fr) - R.ts(p["orig"])) / 1e9)
    if i == "anom.fast_retransmission":
        assert p["rel_seq"] == rel_seq
        assert R.ann(p["dup_frame"], "dup_ack_num") == p["n"] >= 1
        # the byte the duplicate ACKs ask for is the byte this frame resends
        assert R.ann(p["dup_frame"], "rel_ack") == rel_seq
        assert close(p["dt"], (R.ts(fr) - R.ts(p["dup_frame"])) / 1e9)
    if i in ("anom.duplicate_ack", "anom.duplicate_ack_again"):
        assert p["n"] == int(ann["dup_ack_num"]) and p["rel_ack"] == rel_ack
        assert R.ann(p["frame"], "rel_ack") == rel_ack
    if i == "anom.sack":
        for block in p["blocks"]:
            lo, hi = (int(x) for x in block.split("-"))
            assert rel_ack < lo <= hi + 1 or lo <= hi   # blocks lie above the ACK (or D-SACK)
    if i == "anom.lost_segment":
        assert p["rel_seq"] == rel_seq and p["expected"] == R.ann(p["frame"], "next_rel_seq")
        assert p["gap"] == p["rel_seq"] - p["expected"] > 0
    if i.startswith("anom.lost_segment_"):
        # the gap starts at the end of the highest data the side sent before
        highest = max(s.rel_seq + s.length for s in story.steps
                      if s.sender == step.sender and s.length and s.frame < fr)
        assert p["rel_seq"] == rel_seq and p["expected"] == highest
        assert p["gap"] == p["rel_seq"] - p["expected"] > 0 and p["last"] == p["rel_seq"] - 1
    if i in ("anom.lost_segment_reordered", "anom.lost_segment_upstream",
             "anom.lost_segment_resent"):
        lo, n = R.ann(p["later"], "rel_seq"), R.rec(p["later"], "payload_len")
        assert lo < p["rel_seq"] and lo + n > p["expected"] and p["later"] > fr
        assert close(p["dt"], (R.ts(p["later"]) - R.ts(fr)) / 1e9)
    if i == "anom.lost_segment_missed":
        assert R.ann(p["ack_frame"], "rel_ack") >= p["rel_seq"] and p["ack_frame"] > fr
    if i == "anom.retx_first_copy":
        assert p["rel_seq"] == rel_seq and int(ann["new_bytes"]) == plen
    if i in ("anom.rto", "anom.rto_backoff", "anom.tlp") and p["gap"] is not None:
        prev = [s for s in story.steps if s.sender == step.sender and s.length
                and s.rel_seq == rel_seq and s.frame < fr]
        assert close(p["gap"], (R.ts(fr) - R.ts(prev[-1].frame)) / 1e9)
    if i in ("anom.persist_backoff", "anom.keep_alive_again"):
        assert close(p["gap"], (R.ts(fr) - R.ts(p["frame"])) / 1e9) and p["n"] >= 2
    if i == "sig.think":
        assert close(p["gap"], (R.ts(fr) - R.ts(p["frame"])) / 1e9) and p["think"] <= p["gap"]
        assert R.rec(p["frame"], "payload_len") > 0 and plen > 0
    elif i == "sig.nagle":
        assert close(p["held"], (R.ts(fr) - R.ts(p["frame"])) / 1e9)
        assert p["frame"] < p["ack_frame"] < fr and R.rec(p["ack_frame"], "payload_len") == 0
    elif i.startswith("sig."):
        from tcpscope.analysis.annotation import NOTE
        assert int(ann["notes"]) & NOTE[i[4:]]
    if i == "anom.ack_lost_segment":
        assert p["rel_ack"] == rel_ack
    if i == "anom.window_update":
        assert p["new"] == int(ann["win_scaled"]) and p["old"] == R.ann(p["frame"], "win_scaled")
    if i == "anom.out_of_order" and p["dt"] is not None:
        assert close(p["dt"], (R.ts(fr) - R.ts(p["frame"])) / 1e9)
    if i == "state.change":
        ts = [(t.side, t.old.name, t.new.name, t.reason, t.confidence)
              for t in life.transitions if t.frame == fr]
        assert (p["side"], p["old"], p["new"], p["reason"], p["conf"]) in ts
    if i in ("ev.time_wait", "ev.time_wait_simultaneous"):
        assert any(t.frame == fr and t.side == p["side"] and t.new.name == "TIME_WAIT"
                   for t in life.transitions)


def check_summary(f, story, life, conns) -> None:
    p = f.params
    if f.id in ("sum.data", "sum.data_resent"):
        # each byte counted once (copies and resends apart), as the connection row counts them
        k = 0 if p["side"] == "client" else 1
        conn = conns[conns["stream"] == story.stream][0]
        assert p["bytes"] == int(conn["unique_bytes"][k]) and p["packets"] == life.packets[k]
        assert p.get("resent", 0) == int(conn["retrans_bytes"][k])
        assert p["segments"] == sum(1 for s in story.steps if s.sender == p["side"] and s.length)
    if f.id == "sum.nodata":
        assert p["packets"] == life.packets[0 if p["side"] == "client" else 1]
    if f.id == "sum.rtt":
        assert close(p["rtt"], life.handshake_rtt)
    if f.id == "sum.syn_retries":
        assert p["count"] == life.syn_retries and p["intervals"] == list(life.syn_intervals)
    if f.id == "sum.synack_retries":
        assert p["count"] == life.synack_retries
        assert p["intervals"] == list(life.synack_intervals)
    if f.id.startswith("sum.anomaly"):
        assert p["count"] == life.anomalies[p["flag"]]
        frames = [s.frame for s in story.steps if p["flag"] in s.tags]
        assert p["frames"] == frames[:8]
    if f.id == "sum.fin_ack_missed":
        assert life.teardown == "4way" and life.teardown_inferred == "infer.fin_ack_not_captured"
        assert any(t.frame == p["frame"] and t.reason == life.teardown_inferred
                   for t in life.transitions)
    if f.id == "sum.final":
        assert (p["client"], p["server"]) == (life.client_final.name, life.server_final.name)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fact_numbers_are_the_analysis_numbers(path):
    a, stories = analysed(str(path))
    R = Rows(a)
    checked = 0
    for story in stories:
        life = a.lifecycles[story.stream]
        for step in story.steps:
            for f in step.facts:
                check_fact(f, step, story, R, life)
                checked += 1
        for item in story.items:
            if isinstance(item, Run):
                head = item.facts[0].params
                assert head["count"] == len(item.steps)
                assert (head["first"], head["last"]) == (item.steps[0].frame,
                                                         item.steps[-1].frame)
                for f in item.facts[1:]:
                    sel = [s for s in item.steps if s.sender == f.params["side"]]
                    if f.id == "run.data":
                        data = [s for s in sel if s.length]
                        assert f.params["segments"] == len(data)
                        assert f.params["bytes"] == sum(s.length for s in data)
                    else:
                        acks = [s for s in sel if not s.length and s.rel_ack is not None]
                        assert f.params["count"] == len(acks)
        for f in story.summary:
            check_summary(f, story, life, a.connections)
    assert checked > 0


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _numbers(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def _allowed(cat, f) -> set[str]:
    template = cat.template(f.id)
    allowed = _numbers(PLACEHOLDER.sub(" ", template))
    for m in PLACEHOLDER.finditer(template):
        name, fmt = m.group(1), m.group(2)
        value = f.params[name]
        allowed |= _numbers(cat.format_value(value, fmt))
        if fmt == "facts":
            for sub in value:
                allowed |= _allowed(cat, sub)
    return allowed


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("path", CAPTURES[::3], ids=lambda p: p.name)
def test_rendered_numbers_come_from_the_facts(path, lang):
    cat = catalogue(lang)
    _, stories = analysed(str(path))
    for story in stories:
        facts = story.intro + story.summary + [f for s in story.steps for f in s.facts]
        facts += [f for it in story.items if isinstance(it, Run) for f in it.facts]
        for f in facts:
            text = cat.render(f.id, f.params)
            extra = _numbers(text) - _allowed(cat, f)
            assert not extra, (f.id, text, extra)
            # and every numeric parameter shows up in the sentence
            for name, fmt in ((m.group(1), m.group(2)) for m in
                              PLACEHOLDER.finditer(cat.template(f.id))):
                v = f.params[name]
                if fmt is None and isinstance(v, int) and not isinstance(v, bool):
                    assert str(v) in text, (f.id, name, text)
