"""Opening a connection: both endpoints' states through every kind of handshake.

One scripted conversation per case (real frames, ISNs near the 2^32 wrap), run through
the engine and the LifecycleTracker; smoltcp-style sections by the state that matters.
"""
from __future__ import annotations

import pytest

from tcpscope.analysis.lifecycle import backoff_verdict
from tcpscope.wire.options import FastOpen, Mss, SackPermitted, Timestamp, WindowScale
from tests.analysis_helpers import ISN_C, ISN_S, Script
from tests.states_helpers import run

EST = ("ESTABLISHED", "ESTABLISHED")


def handshake(s: Script, **kw) -> None:
    s.c("S", 0, 0, opts=(Mss(1460), SackPermitted(), Timestamp(1, 0), WindowScale(7)), **kw)
    s.s("S.", 0, 1, opts=(Mss(1400), SackPermitted(), Timestamp(2, 1), WindowScale(8)))
    s.c(".", 1, 1)


def test_isns_sit_near_the_wrap():
    assert ISN_C > 0xFFFF_FE00 and ISN_S > 0xFFFF_FE00


# ---------------------------------------------------------------- CLOSED -> SYN-SENT, LISTEN


def test_three_way_handshake():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=300)   # 300 bytes carry the client's numbers past 2^32
    r = run(s)
    assert r.states == [("SYN_SENT", "SYN_RECEIVED"), ("ESTABLISHED", "SYN_RECEIVED"), EST, EST]
    assert r.events == {1: ("handshake_started",), 3: ("handshake_complete",)}
    assert r.path("client") == ["CLOSED", "SYN_SENT", "ESTABLISHED"]
    assert r.path("server") == ["LISTEN", "SYN_RECEIVED", "ESTABLISHED"]
    conf = [(t.side, t.new.name, t.confidence, t.reason) for t in r.transitions()]
    assert conf == [
        ("client", "SYN_SENT", "observed", "open.active"),
        ("server", "SYN_RECEIVED", "assumed", "open.syn_received"),
        ("client", "ESTABLISHED", "assumed", "open.synack_received"),
        ("server", "ESTABLISHED", "assumed", "open.ack_of_syn"),
    ]
    life = r.life
    assert (life.handshake, life.handshake_complete, life.syn_retries, life.synack_retries) == (
        "3way", True, 0, 0)
    assert life.client_options.mss == 1460 and life.server_options.wscale == 8
    assert life.negotiated["wscale"] == (7, 8)
    assert life.negotiated["sack"] and life.negotiated["timestamps"]
    assert life.handshake_rtt == pytest.approx(0.002)
    assert life.packets == (3, 1) and life.bytes == (300, 0)
    assert not life.state_anomalies


def test_data_on_the_third_packet():
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.c("P.", 1, 1, length=10)    # the handshake's ACK carries the request
    r = run(s)
    assert r.states[-1] == EST
    assert r.events[3] == ("handshake_complete",)
    assert r.transitions("server")[-1].event == "recv_ack_of_syn"


# ---------------------------------------------------------------- SYN-SENT


@pytest.mark.parametrize("gaps,verdict", [
    ((1000, 2000, 4000), "doubling"),
    ((1000, 1000, 1000), "constant"),
    ((1000,) * 5 + (2000, 4000), "constant_then_doubling"),
    ((1000, 3000, 1500), "irregular"),
    ((1000,), "single"),
])
def test_syn_retransmissions_and_their_backoff(gaps, verdict):
    s = Script()
    s.c("S", 0, 0)
    for g in gaps:
        s.c("S", 0, 0, ms=g)
    s.s("S.", 0, 1)
    s.c(".", 1, 1)
    r = run(s)
    n = len(gaps)
    # each SYN sent again unanswered shows the copy before it did not arrive: the server
    # was still listening; the last copy is the one the SYN-ACK answers
    assert r.states[: n + 1] == [("SYN_SENT", "LISTEN")] * n + [("SYN_SENT", "SYN_RECEIVED")]
    assert all(r.events[f] == ("syn_retransmit", "state_revised", "state_inferred")
               for f in range(2, n + 2))
    assert r.path("server") == ["LISTEN", "SYN_RECEIVED", "ESTABLISHED"]
    assert [t.reason for t in r.transitions("server") if t.revised].count(
        "revise.syn_resent") == n
    life = r.life
    assert (life.handshake, life.syn_retries, life.syn_backoff) == ("3way+retries", n, verdict)
    assert life.syn_intervals == pytest.approx([g / 1000 for g in gaps])
    assert r.states[-1] == EST and not life.state_anomalies


def test_backoff_verdicts():
    assert backoff_verdict(()) is None
    assert backoff_verdict([1.0, 2.05, 3.9]) == "doubling"
    linux = [1.03, 1.02, 1.02, 1.02, 1.02, 2.02, 4.19, 8.19]   # 6.5+, tcp_syn_linear_timeouts=4
    assert backoff_verdict(linux) == "constant_then_doubling"
    assert backoff_verdict([1.0, 0.0]) == "irregular"


def test_rejected():
    s = Script()
    s.c("S", 0, 0)
    s.s("R.", 0, 1, abs_seq=False)     # RST/ACK acknowledging the SYN
    r = run(s)
    # nothing listened: the server side was CLOSED throughout (not LISTEN, not SYN-RECEIVED)
    assert r.states == [("SYN_SENT", "CLOSED"), ("CLOSED", "CLOSED")]
    assert r.events[2] == ("rejected", "connection_closed", "state_revised",
                          "state_inferred")
    assert r.path("server") == [] and r.life.initial[1].name == "CLOSED"
    assert {t.reason for t in r.transitions("server")} == {"open.syn_received",
                                                           "revise.rejected"}
    assert all(t.revised for t in r.transitions("server"))
    assert r.transitions("client")[-1].reason == "reset.refused"
    life = r.life
    assert (life.handshake, life.teardown, life.rejected_by) == ("rejected", "rst_server", "server")
    assert life.handshake_rtt is None and not life.handshake_complete


def test_rejected_twice():
    s = Script()
    s.c("S", 0, 0)
    s.s("R.", 0, 1)
    s.c("S", 0, 0, ms=1000)            # the same ISN: the same stream (tshark's rule)
    s.s("R.", 0, 1)
    r = run(s)
    assert r.states == [("SYN_SENT", "CLOSED"), ("CLOSED", "CLOSED"),
                        ("SYN_SENT", "CLOSED"), ("CLOSED", "CLOSED")]
    assert r.life.handshake == "rejected" and r.events[4][0] == "rejected"


def test_rst_without_ack_in_syn_sent_is_not_acceptable():
    s = Script()
    s.c("S", 0, 0)
    s.s("R", 0, 0)                     # no ACK: dropped by the client (RFC 9293 §3.10.7.3)
    r = run(s)
    assert r.states[-1] == ("SYN_SENT", "CLOSED")
    assert [a.anomaly for a in r.life.state_anomalies] == ["rst_not_acceptable"]
    assert "state_anomaly" in r.events[2]


def test_unanswered():
    s = Script()
    s.c("S", 0, 0)
    s.c("S", 0, 0, ms=1000)
    s.c("S", 0, 0, ms=1000)
    r = run(s)
    life = r.life
    assert (life.handshake, life.teardown, life.syn_retries, life.syn_backoff) == (
        "unanswered", "none", 2, "constant")
    # no SYN-ACK ever: the best explanation of the whole capture is that no SYN arrived,
    # the server kept listening (every assumed SYN-RECEIVED is revised)
    assert (life.client_final.name, life.server_final.name) == ("SYN_SENT", "LISTEN")
    assert r.states == [("SYN_SENT", "LISTEN")] * 3
    assert r.transitions("server")[0].confidence == "assumed"
    assert all(t.revised for t in r.transitions("server")) and r.path("server") == []


def test_synack_with_a_bad_ack_is_an_anomaly():
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 5)                    # acknowledges bytes never sent
    r = run(s)
    assert r.states[-1] == ("SYN_SENT", "SYN_RECEIVED")
    assert [a.anomaly for a in r.life.state_anomalies] == ["synack_bad_ack"]


def test_synack_not_captured():
    """The client acknowledges the server's SYN: it had the SYN-ACK the capture misses."""
    s = Script()
    s.c("S", 0, 0)
    s.c(".", 1, 1, ms=5)
    r = run(s)
    assert r.states[-1] == ("ESTABLISHED", "ESTABLISHED")
    t = r.transitions("client")[-1]
    assert (t.old.name, t.new.name, t.reason, t.confidence) == (
        "SYN_SENT", "ESTABLISHED", "infer.synack_not_captured", "inferred")
    assert "state_inferred" in r.events[2]


def test_synack_lost_after_the_capture_point():
    """Seen near the server: SYN, SYN-ACK (lost later), the client's SYN again."""
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.c("S", 0, 0, ms=1000)            # it never got the SYN-ACK
    s.s("S.", 0, 1)
    s.c(".", 1, 1)
    r = run(s)
    # the SYN-ACK of frame 2 never arrived: the client was SYN-SENT until frame 4
    assert r.states == [("SYN_SENT", "SYN_RECEIVED"), ("SYN_SENT", "SYN_RECEIVED"),
                        ("SYN_SENT", "SYN_RECEIVED"), ("ESTABLISHED", "SYN_RECEIVED"), EST]
    revise = r.transitions("client")[2]
    assert (revise.old.name, revise.new.name, revise.reason, revise.confidence,
            revise.revised) == ("ESTABLISHED", "SYN_SENT", "revise.not_delivered", "inferred",
                                True)
    assert r.path("client") == ["CLOSED", "SYN_SENT", "ESTABLISHED"]
    life = r.life
    assert (life.syn_retries, life.synack_retries, life.handshake) == (1, 1, "3way+retries")
    assert not life.state_anomalies


# ---------------------------------------------------------------- SYN-RECEIVED


def test_synack_retransmissions():
    """The handshake's ACK is lost after the capture point: the server resends its SYN-ACK."""
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.c(".", 1, 1)
    s.s("S.", 0, 1, ms=1000)
    s.c(".", 1, 1)
    s.s("S.", 0, 1, ms=2000)
    s.c(".", 1, 1)
    r = run(s)
    # each resent SYN-ACK shows the ACK before it was lost: SYN-RECEIVED until the last
    assert [st[1] for st in r.states] == ["SYN_RECEIVED"] * 6 + ["ESTABLISHED"]
    assert r.path("server") == ["LISTEN", "SYN_RECEIVED", "ESTABLISHED"]
    assert r.events[4] == ("synack_retransmit", "state_revised", "state_inferred")
    life = r.life
    assert (life.synack_retries, life.synack_backoff) == (2, "doubling")
    assert life.synack_intervals == pytest.approx([1.001, 2.001])


def test_third_ack_not_captured():
    """The server sends data: it had the ACK of its SYN, though the capture misses it."""
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.s("P.", 1, 1, length=8, ms=5)
    r = run(s)
    assert r.states[-1] == EST
    t = r.transitions("server")[-1]
    assert (t.reason, t.confidence) == ("infer.ack_not_captured", "inferred")


def test_fast_open_server_sends_in_syn_received():
    s = Script()
    s.c("S", 0, 0, length=10, opts=(FastOpen(b"\x01" * 8),))   # data and a cookie on the SYN
    s.s("S.", 0, 11)
    s.s("P.", 1, 11, length=8)         # RFC 7413: the server may answer before the ACK
    s.c(".", 11, 9)
    r = run(s)
    assert r.states == [("SYN_SENT", "SYN_RECEIVED"), ("ESTABLISHED", "SYN_RECEIVED"),
                        ("ESTABLISHED", "SYN_RECEIVED"), EST]
    assert r.events[1] == ("handshake_started", "data_on_syn")
    life = r.life
    assert life.data_on_syn and life.negotiated["tfo"] and life.client_options.tfo
    assert life.bytes == (10, 8) and not life.state_anomalies


def test_close_in_syn_received():
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.s("F.", 1, 1)                    # CLOSE before the handshake's ACK (§3.10.4)
    r = run(s)
    assert r.states[-1] == ("CLOSE_WAIT", "FIN_WAIT_1")


# ---------------------------------------------------------------- simultaneous open


def test_simultaneous_open():
    s = Script()
    s.c("S", 0, 0)
    s.s("S", 0, 0)                     # crossed the client's SYN
    s.c("S.", 0, 1)
    s.s("S.", 0, 1)                    # crossed the client's SYN-ACK
    s.c(".", 1, 1)
    s.s(".", 1, 1)
    r = run(s)
    # the crossings taken back, each side's path is the RFC's simultaneous open
    assert r.states == [("SYN_SENT", "LISTEN"), ("SYN_RECEIVED", "SYN_RECEIVED"),
                        ("SYN_RECEIVED", "SYN_RECEIVED"), EST, EST, EST]
    assert r.path("server") == ["LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED"]
    assert r.path("client") == ["CLOSED", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED"]
    assert [t.reason for t in r.transitions("server")][2:4] == ["open.active_from_listen",
                                                                 "open.simultaneous"]
    assert r.life.handshake == "simultaneous" and r.life.handshake_complete
    assert not r.life.state_anomalies


# ---------------------------------------------------------------- capture order


def test_synack_captured_before_the_syn():
    """A capture that shows the SYN-ACK first (reordered): nothing is lost."""
    s = Script()
    s.s("S.", 0, 1)
    s.c("S", 0, 0)
    s.c(".", 1, 1)
    r = run(s)
    # the client's SYN, captured after, shows it had not taken the SYN-ACK yet
    assert r.states[0] == ("UNKNOWN", "SYN_RECEIVED")
    assert r.states[-1] == EST
    assert r.transitions("client")[0].confidence == "inferred"
    assert not r.life.state_anomalies


def test_lifecycles_need_summaries():
    from tcpscope.analysis.lifecycle import LifecycleTracker

    with pytest.raises(ValueError, match="summaries"):
        LifecycleTracker(summaries=False).lifecycles()
    assert LifecycleTracker(keep_transitions=False).lifecycles() == {}
