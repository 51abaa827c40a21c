"""Display filters against Wireshark's own engine: the frames ``-Y EXPR`` selects.

For every capture of ../shared/captures/files/ and fixtures/ and every expression
of EXPRESSIONS, Wireshark (sharkd: one process per capture answers every
expression, default preferences) and tcpscope (``--mode wireshark``: the
pipeline with a `RowSelection`) select frames; the sets must be equal, but for
the frames both tools dissect differently (IP reassembly, tunnels, jumbograms:
test_tshark_agreement.KNOWN; KNOWN_FRAMES below). Captures Wireshark frames
differently (pcapng blocks it reads as packets and tcpscope does not) are left
out and counted. A test checks that sharkd selects what ``tshark -Y`` selects,
on a few captures.

Expressions on the wire's fields (ports, flags, lengths, addresses, stream
index, relative numbers, options) must agree exactly. Expressions on
``tcp.analysis.*`` inherit the analysis' agreement with tshark
(test_tshark_agreement.py: at least 99.5 % per flag); they must agree on at
least 99.5 % of the frames either side selects. The figures are printed.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import corpus_files, fixture_files, require_tool
from test_tshark_agreement import _known as _tshark_known
from tshark_oracle import _cache_dir, _readable_copy, tshark_version

from tcpscope import pipeline
from tcpscope.capture.errors import CaptureError
from tcpscope.filter import PACKET_FIELDS, DisplayFilter, RowSelection

pytestmark = pytest.mark.oracle

#: (file, frames, reason): frames where the two dissect differently (beyond the frames
#: test_tshark_agreement.KNOWN lists for tcp.stream: IP reassembly, tunnels, jumbograms)
KNOWN_FRAMES: list[tuple[str, frozenset[int], str]] = [
    ("zeek__trunc_ip-discarder-truncated-tcp-oob.pcapng", frozenset({1}),
     "a TCP header cut short: Wireshark's IP layer discards the segment (no tcp), tcpscope "
     "keeps it as a TCP frame without fields"),
    ("OISF__tcp-empty-sack__tcp-opt.pcap", frozenset({24}),
     "a SACK option shorter than one block: Wireshark shows tcp.options.sack, tcpscope's "
     "dissector counts it as malformed (test_tshark_agreement R_DSACK)"),
    ("seladb__null_loopback.pcap", frozenset({3}),
     "a BSD loopback frame whose header is Cisco HDLC's (0f 00 08 00): Wireshark's null "
     "dissector recognises it and shows its IP fields; tcpscope's dissector stops (not TCP)"),
    ("zeek__tcp_rst-inject-rae.pcap", frozenset({2}),
     "the oracle: sharkd dissects twice, and the second pass gives this RST (the reverse "
     "direction's first packet) other relative numbers than tshark's one pass, which "
     "tcpscope's match (tshark -Y 'tcp.seq == 1' selects frame 2, tshark -2 -Y does not)"),
]

#: (expression, exact): exact ones must select the very same frames
EXPRESSIONS: list[tuple[str, bool]] = [
    ("tcp", True), ("tcp.stream == 1", True), ("tcp.stream in {0, 2}", True),
    ("tcp.port == 80", True), ("tcp.port in {80, 443}", True), ("tcp.srcport > 1024", True),
    ("tcp.dstport == 80 && tcp.len > 0", True), ("tcp.port in {1..1023}", True),
    ("tcp.port != 80", True), ("tcp.port ~= 80", True),
    ("tcp.flags.syn == 1 && tcp.flags.ack == 0", True), ("tcp.flags.reset == 1", True),
    ("tcp.flags.fin == 1 or tcp.flags.reset == 1", True), ("tcp.flags & 0x12", True),
    ("tcp.flags == 0x018", True), ("tcp.flags.push == 1 and not tcp.flags.ack == 0", True),
    ("!tcp.flags.ack", True),
    ("tcp.len > 0", True), ("tcp.len >= 1000", True), ("tcp.hdr_len > 20", True),
    ("tcp.seq == 1", True), ("tcp.ack == 1", True), ("tcp.seq_raw > 2147483648", True),
    ("tcp.ack_raw == 0", True), ("tcp.nxtseq > 1000", True),
    ("tcp.window_size_value == 0", True), ("tcp.window_size < 1000", True),
    ("tcp.window_size_scalefactor == -1", True),
    ("ip.addr == 10.0.0.0/8", True), ("ip.src == 192.168.0.0/16", True),
    ("ipv6.addr == ::1", True), ("!(ip.addr == 127.0.0.1)", True), ("ip.ttl < 64", True),
    ("ip.id == 0", True),
    ("tcp.options.mss_val == 1460", True), ("tcp.options.wscale.shift > 5", True),
    ("tcp.options.sack_perm", True), ("tcp.options.timestamp.tsval > 0", True),
    ("tcp.options.sack", True), ("frame.len > 1000", True), ("frame.number <= 10", True),
    ("tcp.srcport == tcp.dstport", True),
    ("tcp.analysis.retransmission", False), ("tcp.analysis.fast_retransmission", False),
    ("tcp.analysis.spurious_retransmission", False), ("tcp.analysis.duplicate_ack", False),
    ("tcp.analysis.lost_segment", False), ("tcp.analysis.ack_lost_segment", False),
    ("tcp.analysis.out_of_order", False), ("tcp.analysis.zero_window", False),
    ("tcp.analysis.window_update", False), ("tcp.analysis.window_full", False),
    ("tcp.analysis.keep_alive", False), ("tcp.analysis.flags", False),
    ("!tcp.analysis.flags && tcp.len > 0", False), ("tcp.analysis.ack_rtt > 0.01", False),
    ("tcp.analysis.bytes_in_flight > 1000", False),
    ("tcp.analysis.duplicate_ack_num >= 2", False), ("tcp.analysis.acks_frame", False),
]


def _sharkd(path: Path, exprs: list[str]) -> dict[str, set[int] | None]:
    """Wireshark's selection per expression (None: Wireshark refuses it); cached."""
    key = hashlib.sha256(path.read_bytes())
    key.update(tshark_version().encode())
    key.update("\n".join(exprs).encode())
    cached = _cache_dir() / ("sharkd-" + key.hexdigest()[:32] + ".json")
    if cached.exists():
        raw = json.loads(cached.read_text())
        return {e: (set(v) if v is not None else None) for e, v in raw.items()}
    with tempfile.TemporaryDirectory() as tmp:
        src = _readable_copy(path, Path(tmp))
        reqs = [{"jsonrpc": "2.0", "id": 1, "method": "load", "params": {"file": str(src)}}]
        for i, e in enumerate(exprs, 2):
            reqs.append({"jsonrpc": "2.0", "id": i, "method": "frames",
                         "params": {"filter": e, "column0": "frame.number:0"}})
        proc = subprocess.run(["sharkd", "-"], input="\n".join(map(json.dumps, reqs)) + "\n",
                              capture_output=True, text=True, timeout=600)
    out: dict[str, set[int] | None] = {e: None for e in exprs}
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        msg = json.loads(line)
        i = msg.get("id", 0)
        if i == 1 and "error" in msg:
            raise RuntimeError(f"sharkd cannot load {path.name}: {msg['error']}")
        if i > 1 and "result" in msg:
            out[exprs[i - 2]] = {int(f["num"]) for f in msg["result"]}
    tmpname = cached.with_suffix(f".tmp{os.getpid()}")
    tmpname.write_text(json.dumps({e: (sorted(v) if v is not None else None)
                                   for e, v in out.items()}))
    tmpname.replace(cached)
    return out


def _ours(path: Path, expr: str) -> set[int]:
    got: set[int] = set()

    class Frames:
        def feed(self, chunk: pipeline.Chunk) -> None:
            got.update(chunk.batch.frame_numbers.tolist())

        def finish(self, result: pipeline.Result) -> None:
            pass

    sel = RowSelection(DisplayFilter(expr, PACKET_FIELDS))
    pipeline.run(pipeline.Input((path,), select=sel), [Frames()],
                 pipeline.Options(mode="wireshark", states=False))
    return got


@dataclass
class Result:
    per_expr: dict[str, list[int]] = field(default_factory=dict)  # [agreeing, union] frames
    exact_problems: list[str] = field(default_factory=list)
    files: int = 0
    other_frames: list[str] = field(default_factory=list)  # captures framed differently


@pytest.fixture(scope="module")
def result() -> Result:
    require_tool("sharkd")
    files = corpus_files() + fixture_files()
    if not files:
        pytest.skip("no captures")
    exprs = [e for e, _ in EXPRESSIONS] + ["frame"]
    exact = dict(EXPRESSIONS)
    res = Result({e: [0, 0] for e in exprs[:-1]})
    for path in files:
        try:
            theirs = _sharkd(path, exprs)
            frames = _ours(path, "frame")
        except CaptureError:
            continue
        if theirs["frame"] != frames:
            res.other_frames.append(path.name)  # Wireshark reads other blocks as frames
            continue
        known = {f for f in frames if _tshark_known(path.name, f, "stream")}
        known |= {f for name, fs, _ in KNOWN_FRAMES if name == path.name for f in fs}
        res.files += 1
        for e in exprs[:-1]:
            t = theirs[e]
            if t is None:
                res.exact_problems.append(f"{path.name}: Wireshark refused {e!r}")
                continue
            o = _ours(path, e)
            # and the frames where the analysis' value itself is a known difference
            value = next((v for v in ("ack_rtt", "initial_rtt", "acks_frame") if v in e), None)
            if value:
                known_value = {f for f in t | o if _tshark_known(path.name, f, value)}
                t, o = t - known_value, o - known_value
            t, o = t - known, o - known
            union = t | o
            res.per_expr[e][0] += len(union) - len(t ^ o)
            res.per_expr[e][1] += len(union)
            if exact[e] and t != o:
                res.exact_problems.append(
                    f"{path.name} {e!r}: only Wireshark {sorted(t - o)[:8]}, "
                    f"only tcpscope {sorted(o - t)[:8]}")
    return res


def test_display_filter_agreement(result: Result, capsys) -> None:
    with capsys.disabled():
        print(f"\ndisplay filters vs Wireshark (sharkd), {result.files} captures "
              f"({len(result.other_frames)} left out: Wireshark makes other frames of their "
              "blocks), frames selected by either side that both select:")
        total = [0, 0]
        for e, (agree, union) in result.per_expr.items():
            total[0] += agree
            total[1] += union
            print(f"  {e:<45} {agree:>7}/{union:<7} "
                  f"{100 * agree / union if union else 100:7.3f} %")
        print(f"  overall: {total[0]}/{total[1]} "
              f"({100 * total[0] / max(total[1], 1):.3f} %)")
    assert result.files
    assert not result.exact_problems, "\n".join(result.exact_problems[:20])
    for e, (agree, union) in result.per_expr.items():
        assert union == 0 or agree / union >= 0.995, f"{e}: {agree}/{union}"


def test_sharkd_selects_what_tshark_y_selects() -> None:
    """The oracle itself: on a few captures, tshark -Y (one pass) selects the same frames
    as sharkd, for every expression."""
    tshark = require_tool("tshark")
    require_tool("sharkd")
    root = Path(__file__).resolve().parent.parent
    picks = [root / "fixtures" / "lo_ipv4.pcap", root / "fixtures" / "handshake_retries.pcap"]
    picks += [p for p in corpus_files() if p.name in (
        "seladb__three_http_streams.pcap", "zeek__tcp_retransmit-fast009.pcap")]
    exprs = [e for e, _ in EXPRESSIONS]
    for path in picks:
        if not path.exists():
            continue
        theirs = _sharkd(path, exprs + ["frame"])
        for e in exprs:
            proc = subprocess.run([tshark, "-n", "-r", str(path), "-Y", e, "-T", "fields",
                                   "-e", "frame.number"], capture_output=True, text=True,
                                  timeout=120)
            got = {int(x) for x in proc.stdout.split()}
            assert got == theirs[e], f"{path.name} {e!r}: tshark -Y {sorted(got ^ theirs[e])[:8]}"


def test_display_filter_errors_point_at_the_column() -> None:
    from tcpscope.filter import DisplayFilterError

    for expr, col in [("tcp.prot == 80", 0), ("tcp.port == 80 &&", 17), ("tcp.port = 80", 9),
                      ("ip.addr == 300.1.1.1", 11), ("tcp.port in {80 443", 19),
                      ("(tcp.len > 0", 12), ("tcp.analysis.retransmission == 1", 28)]:
        with pytest.raises(DisplayFilterError) as info:
            DisplayFilter(expr, PACKET_FIELDS)
        assert info.value.column == col, (expr, info.value.pointed())
        assert info.value.pointed().splitlines()[-1].index("^") == 4 + col


def test_columns_are_evaluated_as_arrays() -> None:
    """A filter reads whole columns: a chunk of a million rows is one call per test."""
    from tcpscope.filter.fields import Columns

    f = DisplayFilter("tcp.port in {80 443} && tcp.len > 0", PACKET_FIELDS)
    n = 1_000_000
    from tcpscope.wire.record import KIND, RECORD_DTYPE

    rec = np.zeros(n, RECORD_DTYPE)
    rec["kind"] = KIND["TCP"]
    rec["sport"][::2] = 80
    rec["payload_len"][::4] = 10

    class Chunk:
        records = rec

    keep = f.mask(Columns.from_chunk(Chunk()))
    assert int(keep.sum()) == n // 4
