"""Connections: stream index, port reuse, roles, summaries (analysis/connections.py, the one
decoder of the engine's connection rows), window scaling, 64-bit numbers."""
from __future__ import annotations

import numpy as np
import pytest

from tcpscope.analysis.engine import Analyzer
from tcpscope.analysis.connections import decode_all, sent_by_server
from tcpscope.wire.seq import Unwrapper, seq_diff, seq_gt, seq_lt
from tcpscope.wire.options import Mss, SackPermitted, Timestamp, WindowScale
from tests.analysis_helpers import ISN_C, ISN_S, Script, feed_records, tcp_record

C = dict(src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=80)
S = dict(src="10.0.0.2", dst="10.0.0.1", sport=80, dport=40000)


def rec(side, **kw):
    return tcp_record(**side, **kw)


# ---------------------------------------------------------------------------
# Stream index
# ---------------------------------------------------------------------------

def test_streams_numbered_by_first_appearance_any_direction():
    recs = [rec(S, seq=5, ack=9, flags="."),                       # stream 0 (server speaks first)
            tcp_record(src="10.0.0.3", dst="10.0.0.4", seq=1, flags="S"),  # stream 1
            rec(C, seq=9, ack=5, flags=".")]                       # stream 0 again
    ann = feed_records(recs, [1, 2, 3])
    assert list(ann["stream"]) == [0, 1, 0]


def test_ipv4_and_ipv6_and_ports_are_distinct_conversations():
    recs = [tcp_record(src="10.0.0.1", dst="10.0.0.2", flags="S"),
            tcp_record(src="::1", dst="::2", flags="S"),
            tcp_record(src="10.0.0.1", dst="10.0.0.2", sport=40001, flags="S"),
            tcp_record(src="::2", dst="::1", sport=80, dport=40000, flags="S.", ack=1)]
    ann = feed_records(recs, [1, 2, 3, 4])
    assert list(ann["stream"]) == [0, 1, 2, 1]


def test_non_tcp_rows_have_no_stream():
    r = tcp_record(**C, flags="S")
    r2 = r.copy()
    r2["kind"] = 4  # UDP
    ann = feed_records([r, r2], [1, 2])
    assert list(ann["stream"]) == [0, -1]
    assert ann[1]["kind"] == 0


def test_syn_with_new_isn_starts_a_new_stream_same_isn_does_not():
    recs = [rec(C, seq=ISN_C, flags="S"), rec(S, seq=ISN_S, ack=ISN_C + 1, flags="S."),
            rec(C, seq=ISN_C + 1, ack=ISN_S + 1, flags="."),
            rec(C, seq=ISN_C + 1, ack=ISN_S + 1, flags="R."),
            rec(C, seq=ISN_C, flags="S"),               # same ISN, even after RST: same stream
            rec(C, seq=ISN_C + 12345, flags="S"),       # new ISN: new stream
            rec(S, seq=7, ack=ISN_C + 12346, flags="S.")]
    an = Analyzer("wireshark")
    ann = feed_records(recs, list(range(1, 8)), analyzer=an)
    assert list(ann["stream"]) == [0, 0, 0, 0, 0, 1, 1]
    conns = an.connections()
    assert conns[1]["reused_ports"] == 1 and conns[1]["prev_stream"] == 0


def test_a_frame_after_eviction_keeps_stream_and_relative_numbers():
    an = Analyzer(close_timeout=0, max_closed=0)  # evict closed connections at once
    recs = [rec(C, seq=ISN_C, flags="S"), rec(S, seq=ISN_S, ack=ISN_C + 1, flags="S."),
            rec(C, seq=ISN_C + 1, ack=ISN_S + 1, flags="R.")]
    feed_records(recs, [1, 2, 3], analyzer=an)
    assert an.stats()["evicted"] == 1
    late = feed_records([rec(S, seq=ISN_S + 1, ack=ISN_C + 1, flags=".")], [10], analyzer=an)
    assert int(late[0]["stream"]) == 0 and int(late[0]["rel_seq"]) == 1 and int(late[0]["rel_ack"]) == 1
    again = feed_records([rec(C, seq=ISN_C + 99, flags="S")], [11], analyzer=an)
    assert int(again[0]["stream"]) == 1  # reuse is still detected from the kept base


# ---------------------------------------------------------------------------
# Roles and summaries
# ---------------------------------------------------------------------------

def _handshake_script() -> Script:
    s = Script()
    s.c("SEW", 0, 0, opts=(Mss(1460), SackPermitted(), Timestamp(1, 0), WindowScale(7)))
    s.s("S.E", 0, 1, opts=(Mss(1400), WindowScale(9)), ms=10)
    s.c(".", 1, 1, ms=10)
    s.c("P.", 1, 1, length=300)
    s.s("P.", 1, 301, length=1000)
    s.c("F.", 301, 1001)
    s.s("F.", 1001, 302)
    s.c(".", 302, 1002)
    return s


def test_connection_summary():
    s = _handshake_script()
    an = Analyzer("wireshark")
    s.run(analyzer=an)
    (c,) = decode_all(an.connections())
    assert c.stream == 0 and not c.role_guessed
    assert (c.client.addr, c.client.port, c.server.addr, c.server.port) == ("10.0.0.1", 40000, "10.0.0.2", 80)
    assert (c.client.packets, c.server.packets) == (5, 3)
    assert (c.client.bytes, c.server.bytes) == (300, 1000)
    assert (c.client.isn, c.server.isn) == (ISN_C, ISN_S)
    assert (c.client.mss, c.server.mss) == (1460, 1400)
    assert (c.client.wscale, c.server.wscale) == (7, 9)
    assert c.client.sack_permitted and not c.server.sack_permitted
    assert c.client.timestamps and not c.server.timestamps
    assert c.ecn_negotiated
    assert c.client.saw_syn and c.server.saw_synack and c.client.saw_fin and c.server.saw_fin
    assert c.irtt_ns == 20_000_000
    assert c.first_frame == 1 and c.last_frame == 8 and c.duration_ns == 10_000_000 + 10_000_000 + 5_000_000


def test_roles_from_syn_ack_when_syn_missing():
    recs = [rec(S, seq=ISN_S, ack=ISN_C + 1, flags="S."), rec(C, seq=ISN_C + 1, ack=ISN_S + 1, flags=".")]
    an = Analyzer("wireshark")
    ann = feed_records(recs, [1, 2], analyzer=an)
    (c,) = decode_all(an.connections())
    assert c.client.port == 40000 and not c.role_guessed
    assert list(ann["from_server"]) == [1, 0]


def test_roles_guessed_without_handshake():
    recs = [rec(S, seq=5, ack=9, flags="P.", length=10), rec(C, seq=9, ack=15, flags=".")]
    an = Analyzer("wireshark")
    ann = feed_records(recs, [1, 2], analyzer=an)
    (c,) = decode_all(an.connections())
    assert c.role_guessed and c.client.port == 80  # the first sender, marked as a guess
    assert c.client.isn is None
    assert list(ann["role_guessed"]) == [1, 1]


def test_connection_dicts_are_plain():
    an = Analyzer("wireshark")
    _handshake_script().run(analyzer=an)
    (d,) = an.connection_dicts()
    assert d["client"] == "10.0.0.1" and d["server_port"] == 80 and d["irtt"] == pytest.approx(0.02)
    assert d["client_side"]["mss"] == 1460 and d["flag_counts"]["retransmission"] == 0
    assert d["client_side"]["isn"] == ISN_C and d["prev_stream"] is None
    assert d == decode_all(an.connections())[0].as_dict()


def test_ipv6_addresses_as_tcpdump_writes_them():
    recs = [tcp_record(src="2001:db8::1", dst="::ffff:10.0.0.2", sport=40000, dport=80,
                       flags="S")]
    an = Analyzer("wireshark")
    feed_records(recs, [1], analyzer=an)
    (c,) = decode_all(an.connections())
    assert (c.client.addr, c.server.addr) == ("2001:db8::1", "::ffff:10.0.0.2")


def test_sent_by_server_follows_the_final_roles():
    """The engine swaps guessed roles at the SYN-ACK: rows before it keep their old
    from_server, the connection row has the final roles."""
    recs = [rec(S, seq=ISN_S + 1, ack=ISN_C + 1, flags="."),      # guessed: S is the client
            rec(S, seq=ISN_S, ack=ISN_C + 1, flags="S."),         # S answers a SYN: the server
            rec(C, seq=ISN_C + 1, ack=ISN_S + 1, flags=".")]
    an = Analyzer("wireshark")
    ann = feed_records(recs, [1, 2, 3], analyzer=an)
    (row,) = an.connections()
    assert sent_by_server(row, np.concatenate(recs)).tolist() == [True, True, False]
    assert ann["from_server"].tolist() == [0, 1, 0]


# ---------------------------------------------------------------------------
# Window scaling (RFC 7323 §2.2-2.3, Wireshark's -1 / -2)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "c_ws, s_ws, c_scale, s_scale",
    [
        (7, 9, 7, 9),        # both offered: each side's own shift
        (None, None, -2, -2),  # neither: no scaling
        (7, None, -2, -2),   # SYN offered, SYN-ACK did not: no scaling either way
        (None, 9, -2, -2),   # SYN-ACK offered without the SYN: ignored
        (15, 14, 14, 14),    # shifts above 14 count as 14
    ],
)
def test_window_scale_cases(c_ws, s_ws, c_scale, s_scale):
    s = Script()
    s.c("S", 0, 0, opts=(WindowScale(c_ws),) if c_ws is not None else ())
    s.s("S.", 0, 1, opts=(WindowScale(s_ws),) if s_ws is not None else ())
    s.c(".", 1, 1, win=100)
    s.s(".", 1, 1, win=100)
    ann = s.run()
    assert [int(a["win_scaled"]) for a in ann[:2]] == [1000, 1000]  # SYNs are never scaled
    assert (int(ann[2]["win_scale"]), int(ann[3]["win_scale"])) == (c_scale, s_scale)
    assert int(ann[2]["win_scaled"]) == (100 << c_scale if c_scale >= 0 else 100)
    assert int(ann[3]["win_scaled"]) == (100 << s_scale if s_scale >= 0 else 100)


def test_window_scale_unknown_midstream():
    ann = feed_records([rec(C, seq=5, ack=9, win=300)], [1])
    assert int(ann[0]["win_scale"]) == -1 and int(ann[0]["win_scaled"]) == 300


# ---------------------------------------------------------------------------
# Relative numbers: 2^32 wrap and beyond 4 GiB
# ---------------------------------------------------------------------------

def test_relative_numbers_are_64_bit_past_4_gib():
    step = 1 << 20  # 1 MiB segments (the engine does not care about MSS)
    recs = [rec(C, seq=ISN_C, flags="S"), rec(S, seq=ISN_S, ack=ISN_C + 1, flags="S.")]
    times = [1, 2]
    for i in range(4200):  # 4.1 GiB
        recs.append(rec(C, seq=ISN_C + 1 + i * step, ack=ISN_S + 1, flags=".", length=step))
        recs.append(rec(S, seq=ISN_S + 1, ack=ISN_C + 1 + (i + 1) * step, flags="."))
        times += [3 + 2 * i, 4 + 2 * i]
    ann = feed_records(recs, times)
    data = ann[2::2]
    acks = ann[3::2]
    assert list(data["rel_seq"][:3]) == [1, 1 + step, 1 + 2 * step]
    assert int(data["rel_seq"][-1]) == 1 + 4199 * step > 1 << 32
    assert int(acks["rel_ack"][-1]) == 1 + 4200 * step
    assert (np.diff(data["rel_seq"]) == step).all()
    assert not (ann["flags"] != 0).any()


def test_seq_helpers():
    assert seq_diff(5, 0xFFFF_FFFB) == 10 and seq_diff(0xFFFF_FFFB, 5) == -10
    assert seq_lt(0xFFFF_FFF0, 0x10) and seq_gt(0x10, 0xFFFF_FFF0)
    u = Unwrapper(0xFFFF_FFF0)
    assert [u.unwrap(x) for x in (0xFFFF_FFFF, 0x10, 0xFFFF_FFF8, 0x8000_0000)] == [
        0xFFFF_FFFF, (1 << 32) + 0x10, 0xFFFF_FFF8, (1 << 32) + 0x8000_0000]
