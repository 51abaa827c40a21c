"""Improved mode's verdicts against the kernel's own record (fixtures/hindsight/, issue 10).

For each hindsight fixture the analysis in the default mode (improved) runs on its captures
and its counts are set beside what the kernel, the relay and the applications recorded while
the captures were made (tests/hindsight_truth.py): retransmissions and unique / resent bytes
(nstat TcpRetransSegs, TCP_INFO bytes_retrans, the applications' writes), tail loss probes and
timeouts (TCPLossProbes, TCPTimeouts), persist probes and keep-alives (TCPWinProbe,
TCPKeepAlive), challenge ACKs (TCPChallengeACK), D-SACKs (TCPDSACKRecv), CE / ECE / CWR
(the relay's marks, IpExtInCEPkts), URG, segments above the MSS, RST without ACK, losses before
the receiver vs late originals (the relay's log), which copy an ACK answers (its TSecr) and
delayed ACKs (never above 500 ms).

Agreement is printed per class (run with ``-s``) and asserted: every check agrees, except the
differences listed in KNOWN (docs/differences.md, "Improved mode against the kernel"), whose
value is pinned so that a change in either direction is noticed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from hindsight_truth import load, names

from tcpscope.analysis.annotation import FLAG, NOTE
from tcpscope.analysis.engine import DEFAULT_MODE, Analysis
from tcpscope.pipeline import analyze
from tcpscope.present.story import build_story
from tcpscope.present.story.collect import collect

NAMES = names()


@dataclass(frozen=True)
class Check:
    cls: str        #: what is compared (a row of the agreement table)
    case: str       #: fixture / capture
    ours: object
    truth: object

    @property
    def agrees(self) -> bool:
        return self.ours == self.truth


#: (class, case) -> (our pinned value, why it differs from the truth; docs/differences.md)
R_SPLIT = ("an in-window SYN on an established 4-tuple starts a new stream in both modes "
           "(Wireshark's port reuse: a SYN with a new ISN), so the connection is counted as two")
KNOWN: dict[tuple[str, str], tuple[object, str]] = {
    ("challenge ACKs", "hs_challenge_ack/sender"): (
        1, R_SPLIT + ": the challenge ACK answering the SYN is the first ACK of the second "
           "stream and is not recognised; the one answering the in-window RST is"),
    ("unique bytes", "hs_challenge_ack/sender#0 c2s"): (10, R_SPLIT),
    ("unique bytes", "hs_challenge_ack/sender#0 s2c"): (8, R_SPLIT),
    ("unique bytes", "hs_challenge_ack/receiver#0 c2s"): (10, R_SPLIT),
    ("unique bytes", "hs_challenge_ack/receiver#0 s2c"): (8, R_SPLIT),
}


@cache
def run(name: str, side: str) -> Analysis:
    assert DEFAULT_MODE == "improved"
    return analyze(str(load(name).captures[side].path))


def _client_rows(a: Analysis, stream: int, swap: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the stream, and for each whether the truth's client sent it."""
    rows = np.flatnonzero(a.annotations["stream"] == stream)
    return rows, a.annotations["from_server"][rows] == swap


def _conn(a: Analysis, stream: int) -> np.void:
    return a.connections[a.connections["stream"] == stream][0]


def _stream_of(a: Analysis, c) -> tuple[int, int]:
    """The stream of truth connection c (the first one in its window), and 1 when the
    analysis took its roles the other way round (roles are not checked here)."""
    for row in a.connections:
        ports = int(row["client_port"]), int(row["server_port"])
        if {ports, ports[::-1]} & {(c.client_port, c.server_port)} and c.in_window(int(row["first_ts"])):
            return int(row["stream"]), int(ports != (c.client_port, c.server_port))
    raise AssertionError(f"no stream for {c.flow}")


def _count(a: Analysis, rows: np.ndarray, mask: np.ndarray, flag: int = 0, note: int = 0,
           data: bool = False) -> int:
    ann = a.annotations[rows[mask]]
    rec = a.records[rows[mask]]
    m = np.ones(len(ann), bool)
    if flag:
        m &= (ann["flags"] & flag) != 0
    if note:
        m &= (ann["notes"] & note) != 0
    if data:
        m &= rec["payload_len"] > 0
    return int(np.count_nonzero(m))


def checks_of(name: str) -> list[Check]:
    t = load(name)
    out: list[Check] = []
    caps = {c.side for c in t.captures.values()}
    for side in sorted(caps - {"tap"}):
        a = run(name, side)
        case = f"{name}/{side}"
        for ci, c in enumerate(t.conns):
            if c.facts.get("spoofed") or "server_segments_in" in c.facts:
                continue
            stream, swap = _stream_of(a, c)
            conn = _conn(a, stream)
            rows, by_client = _client_rows(a, stream, swap)
            cl, sv = swap, 1 - swap
            f = c.facts
            # class 5: unique bytes are what the applications wrote
            if c.bytes_c2s is not None:
                out.append(Check("unique bytes", f"{case}#{ci} c2s", int(conn["unique_bytes"][cl]),
                                 c.bytes_c2s))
            if c.bytes_s2c is not None:
                out.append(Check("unique bytes", f"{case}#{ci} s2c", int(conn["unique_bytes"][sv]),
                                 c.bytes_s2c))
            if side == "sender" and "retrans_segments_c2s" in f:
                out.append(Check("retransmissions = TcpRetransSegs", case,
                                 _count(a, rows, by_client, FLAG["retransmission"], data=True),
                                 t.counter("A", "TcpRetransSegs")))
            if side == "sender" and "retrans_bytes_c2s" in f:
                out.append(Check("retransmitted bytes", case, int(conn["retrans_bytes"][cl]),
                                 f["retrans_bytes_c2s"]))
            # class 7: timers
            if side == "sender" and ("tlp" in f or "retrans_segments_c2s" in f):
                out.append(Check("tail loss probes = TCPLossProbes", case, int(conn["tlp_count"][cl]),
                                 t.counter("A", "TcpExtTCPLossProbes")))
                out.append(Check("RTOs = TCPTimeouts", case, int(conn["rto_count"][cl]),
                                 t.counter("A", "TcpExtTCPTimeouts")))
            # class 6: persist probes vs keep-alives
            if "window_probes_c2s" in f:
                out.append(Check("window probes = TCPWinProbe", case,
                                 _count(a, rows, by_client, FLAG["zero_window_probe"]),
                                 t.counter("A", "TcpExtTCPWinProbe")))
            if "keepalives_c2s" in f:
                out.append(Check("keep-alives", case, _count(a, rows, by_client, FLAG["keep_alive"]),
                                 f["keepalives_c2s"]))
            if "probe_bytes" in f:
                probes = rows[by_client & ((a.annotations["flags"][rows]
                                           & (FLAG["zero_window_probe"] | FLAG["keep_alive"])) != 0)]
                out.append(Check("probe bytes", case,
                                 sorted(set(a.records["payload_len"][probes].tolist())),
                                 f["probe_bytes"]))
            if "dsack" in f and side == "sender":
                out.append(Check("D-SACKs = TCPDSACKRecv", case,
                                 _count(a, rows, ~by_client, note=NOTE["dsack"]),
                                 t.counter("A", "TcpExtTCPDSACKRecv")))
            if "ecn" in f:
                e = f["ecn"]
                if side == "receiver":  # the relay sets CE after the sender's capture point
                    out.append(Check("ECN CE", case, int(conn["ecn_ce"].sum()), e["ce"]))
                out.append(Check("ECN ECE", case, int(conn["ecn_ece"].sum()), e["ece"]))
                out.append(Check("ECN CWR", case, int(conn["ecn_cwr"].sum()), e["cwr"]))
            if "urgent" in f:
                out.append(Check("URG segments", case, int(conn["urgent"].sum()),
                                 f["urgent"]["segments"]))
            if "mss" in f and "data_segs_out" in f:
                mss = int(conn["mss"][sv])
                data = rows[by_client & (a.records["payload_len"][rows] > 0)]
                big = int(np.count_nonzero(a.records["payload_len"][data] > mss))
                out.append(Check("segments above the MSS (TSO)", case, int(conn["above_mss"][cl]),
                                 big))
            if "duplicate_frames" in f:
                # the relay's copies pass the capture downstream of it: c2s at the receiver's
                want = sum(1 for d in f["duplicate_frames"]
                           if (d["dir"] == "c2s") == (side == "receiver"))
                mask = by_client if side == "receiver" else ~by_client
                out.append(Check("duplicate frames", case,
                                 _count(a, rows, mask, FLAG["capture_duplicate"]), want))
            if "rst_without_ack" in f:
                out.append(Check("RST without ACK (no TCB)", case,
                                 _count(a, rows, by_client, note=NOTE["rst_no_ack"]),
                                 f["client_resets_sent"]))
            if "client_challenge_acks" in f and side == "sender":
                out.append(Check("challenge ACKs", case,
                                 _count(a, rows, by_client, note=NOTE["challenge_ack"]),
                                 f["client_challenge_acks"]))
        if "challenge_acks" in t.conns[0].facts and side == "sender":
            n = sum(int(r["challenge_acks"][1]) for r in a.connections)
            out.append(Check("challenge ACKs", case, n, t.counter("B", "TcpExtTCPChallengeACK")))
    return out


def loss_checks(name: str) -> list[Check]:
    """Class 3 at the receiver: segments lost before it are resends whose first copy the
    capture shows (a loss upstream), late originals are out of order (reordered)."""
    t = load(name)
    c = t.conns[0]
    if "lost_upstream" not in c.facts:
        return []
    a = run(name, "receiver")
    rows, by_client = _client_rows(a, *_stream_of(a, c))
    ann = a.annotations[rows]
    first_copy_resent = by_client & ((ann["flags"] & FLAG["retransmission"]) != 0) & (
        ann["new_bytes"] > 0)
    late = by_client & ((ann["flags"] & FLAG["out_of_order"]) != 0)
    case = f"{name}/receiver"
    return [Check("lost upstream (resent, first copy here)", case, int(first_copy_resent.sum()),
                  len(c.facts["lost_upstream"])),
            Check("reordered (late originals)", case, int(late.sum()), len(c.facts["reordered"]))]


STORY_KEYS = ("ack_match", "ack_delays", "nagle_stalls", "think_ms", "tfo", "rst_instead_of_fin")


def gap_checks(name: str) -> list[Check]:
    """Class 3 in explain: each gap in the client's data told as what the relay did (a drop
    before the capture point, a late original) or what the capture missed."""
    t = load(name)
    c = t.conns[0]
    if "lost_upstream" not in c.facts:
        return []
    out = []
    for side in ("receiver", "tap"):
        a, extra = collect(str(t.captures[side].path))
        story = build_story(a, _stream_of(a, c)[0], extra)
        told = defaultdict(int)
        for step in story.steps:
            for f in step.facts:
                if f.id.startswith("anom.lost_segment"):
                    told[f.id.removeprefix("anom.lost_segment").lstrip("_") or "?"] += 1
        misses = c.facts["capture_misses"][side] if side == "tap" else []
        drops = len({d["rule"] for d in c.facts["lost_upstream"]})  # a burst is one gap
        out.append(Check("gaps told: lost before the capture point", f"{name}/{side}",
                         told["upstream"], drops))
        out.append(Check("gaps told: reordered", f"{name}/{side}", told["reordered"],
                         len(c.facts["reordered"])))
        out.append(Check("gaps told: missed by the capture", f"{name}/{side}", told["missed"],
                         sum(1 for m in misses if m["dir"] == "c2s" and m["len"])))
    return out


def story_checks(name: str) -> list[Check]:
    """What explain tells (its facts): the copy an ACK answers (TSecr), delayed ACKs (never
    above 500 ms), Nagle stalls, think time, the TFO cookie's issuer, a RST for unread data."""
    t = load(name)
    out: list[Check] = []
    for ci, c in enumerate(t.conns):
        if any(k in c.facts for k in STORY_KEYS):
            out += _story_checks(name, ci)
    return out


def _story_checks(name: str, ci: int) -> list[Check]:
    t = load(name)
    c = t.conns[ci]
    out: list[Check] = []
    a, extra = collect(str(t.captures["sender"].path))
    stream, _swap = _stream_of(a, c)
    story = build_story(a, stream, extra)
    facts = [(s.frame, f) for s in story.steps for f in s.facts]
    case = f"{name}/sender" + (f"#{ci}" if ci else "")
    if "ack_match" in c.facts:
        m = c.facts["ack_match"]
        data = [f for _, f in facts if f.id == "ack.data" and f.params["seq"] == 1]
        copies = [s.frame for s in story.steps if not s.from_server and s.length and s.rel_seq == 1]
        out.append(Check("ACK answers the copy its TSecr echoes", case,
                         copies.index(data[0].params["frame"]) + 1 if data else None,
                         m["answers_copy"]))
        out.append(Check("no delayed ACK above 500 ms", case,
                         any(f.id == "ack.delayed" for _, f in facts), m["delayed_ack"]))
    if "ack_delays" in c.facts:
        out.append(Check("delayed ACKs named", case,
                         sum(f.id == "ack.delayed" for _, f in facts),
                         len(c.facts["ack_delays"])))
    if "nagle_stalls" in c.facts:
        out.append(Check("Nagle x delayed-ACK stalls", case,
                         sum(f.id == "sig.nagle" for _, f in facts), c.facts["nagle_stalls"]))
    if "think_ms" in c.facts:
        for side, want in c.facts["think_ms"].items():
            got = [f.params["think"] * 1000 for _, f in facts
                   if f.id == "sig.think" and f.params["side"] == side]
            out.append(Check("think time (network vs application)", f"{case} {side}",
                             len(got) == len(want) and all(abs(g - w) < 5 for g, w in zip(got, want)),
                             True))
    if "tfo" in c.facts and "cookie_issued_by" in c.facts["tfo"]:
        issued = [f.params["side"] for _, f in facts if f.id == "opt.tfo_issued"]
        out.append(Check("TFO cookie issued by", case, issued, [c.facts["tfo"]["cookie_issued_by"]]))
    if "rst_instead_of_fin" in c.facts:
        unread = [f.params["side"] for _, f in facts if f.id == "rst.unread"]
        out.append(Check("RST for unread data", case, unread, [c.facts["rst_instead_of_fin"]]))
    return out


#: explain facts claimed only where the truth records them: (fact id, truth key). (Think time
#: is not here: most experiments' applications pause, which the truth records only in
#: hs_think_time.)
CLAIMS = (("sig.nagle", "nagle_stalls"), ("rst.unread", "rst_instead_of_fin"),
          ("opt.tfo_issued", "tfo"), ("sig.challenge_ack", None))


def false_claims(name: str) -> list[Check]:
    """Where the truth records none of a fact, explain claims none either (on the sender's
    capture, every connection)."""
    t = load(name)
    a, extra = collect(str(t.captures["sender"].path))
    told = {fid: 0 for fid, _ in CLAIMS}
    for stream in sorted({int(s) for s in a.connections["stream"]}):
        for step in build_story(a, stream, extra).steps:
            for f in step.facts:
                if f.id in told:
                    told[f.id] += 1
    out = []
    for fid, key in CLAIMS:
        if key is None:
            recorded = any(k in c.facts for c in t.conns for k in ("challenge_acks",
                                                                 "client_challenge_acks"))
            recorded |= bool(t.counter("A", "TcpExtTCPChallengeACK")
                             or t.counter("B", "TcpExtTCPChallengeACK"))
        else:
            recorded = any(key in c.facts for c in t.conns)
        if not recorded:
            out.append(Check(f"no false claim: {fid}", f"{name}/sender", told[fid], 0))
    return out


def all_checks() -> list[Check]:
    out: list[Check] = []
    for n in NAMES:
        out += checks_of(n) + loss_checks(n) + gap_checks(n) + story_checks(n) + false_claims(n)
    return out


@pytest.fixture(scope="module")
def checks() -> list[Check]:
    res = all_checks()
    per: dict[str, list[Check]] = defaultdict(list)
    for ch in res:
        per[ch.cls].append(ch)
    print("\nimproved mode against the kernel's record (hindsight fixtures)")
    for cls, chs in per.items():
        ok = sum(ch.agrees for ch in chs)
        print(f"  {cls:45s} {ok:3d}/{len(chs):<3d} {100 * ok / len(chs):6.1f}%")
    for ch in res:
        if not ch.agrees:
            print(f"    differs: {ch.cls} {ch.case}: ours {ch.ours!r}, kernel {ch.truth!r}")
    return res


def test_every_verdict_agrees_with_the_kernel(checks: list[Check]) -> None:
    wrong = [ch for ch in checks if not ch.agrees and (ch.cls, ch.case) not in KNOWN]
    assert not wrong, wrong
    assert len(checks) >= 60


def test_known_differences_are_pinned(checks: list[Check]) -> None:
    by_key = {(ch.cls, ch.case): ch for ch in checks}
    for key, (ours, _why) in KNOWN.items():
        assert key in by_key, key
        assert by_key[key].ours == ours and not by_key[key].agrees, key


def test_every_class_is_checked(checks: list[Check]) -> None:
    classes = {ch.cls for ch in checks}
    for want in ("unique bytes", "retransmissions = TcpRetransSegs", "retransmitted bytes",
                 "tail loss probes = TCPLossProbes", "RTOs = TCPTimeouts",
                 "window probes = TCPWinProbe", "keep-alives", "D-SACKs = TCPDSACKRecv", "ECN CE",
                 "ECN ECE", "ECN CWR", "URG segments", "segments above the MSS (TSO)",
                 "challenge ACKs", "RST without ACK (no TCB)",
                 "lost upstream (resent, first copy here)", "reordered (late originals)",
                 "ACK answers the copy its TSecr echoes", "delayed ACKs named",
                 "Nagle x delayed-ACK stalls", "duplicate frames",
                 "gaps told: lost before the capture point", "gaps told: reordered",
                 "gaps told: missed by the capture", "think time (network vs application)",
                 "TFO cookie issued by", "RST for unread data"):
        assert want in classes, want
