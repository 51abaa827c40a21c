"""Closing a connection: FIN-WAIT-1 .. TIME-WAIT on both sides, resets, missed packets.

Every script starts with the same handshake (ISNs near the 2^32 wrap) and a little data,
so relative numbers are: client data 1..11, server data 1..9.
"""
from __future__ import annotations

import pytest

from tests.analysis_helpers import Script
from tests.states_helpers import run

EST = ("ESTABLISHED", "ESTABLISHED")


def opened() -> Script:
    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.c(".", 1, 1)
    s.c("P.", 1, 1, length=10)
    s.s("P.", 1, 11, length=8)
    s.c(".", 11, 9)
    return s  # 6 frames


# ---------------------------------------------------------------- FIN-WAIT-1 / CLOSE-WAIT


def test_four_packet_close():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s(".", 9, 12, ms=40)
    s.s("F.", 9, 12, ms=300)
    s.c(".", 12, 10)
    r = run(s)
    assert r.states[6:] == [("FIN_WAIT_1", "CLOSE_WAIT"), ("FIN_WAIT_2", "CLOSE_WAIT"),
                            ("TIME_WAIT", "LAST_ACK"), ("TIME_WAIT", "CLOSED")]
    assert r.events[7] == ("teardown_started",)
    assert r.events[8] == ("fin_acked",)
    assert r.events[9] == ("time_wait_entered",)
    assert r.events[10] == ("fin_acked", "connection_closed")
    life = r.life
    assert (life.teardown, life.teardown_complete, life.time_wait_side) == ("4way", True, "client")
    assert (life.client_final.name, life.server_final.name) == ("TIME_WAIT", "CLOSED")
    reasons = [(t.side, t.reason, t.confidence) for t in r.transitions()][4:]
    assert reasons == [
        ("client", "close.active", "observed"), ("server", "close.passive", "assumed"),
        ("client", "close.fin_acked", "assumed"), ("server", "close.passive_fin", "observed"),
        ("client", "close.time_wait", "assumed"), ("server", "close.last_ack", "assumed"),
    ]


def test_server_closes_first():
    s = opened()
    s.s("F.", 9, 11, ms=100)
    s.c(".", 11, 10)
    s.c("F.", 11, 10, ms=300)
    s.s(".", 10, 12)
    r = run(s)
    assert r.states[-2:] == [("LAST_ACK", "TIME_WAIT"), ("CLOSED", "TIME_WAIT")]
    assert (r.life.teardown, r.life.time_wait_side) == ("4way", "server")


def test_three_packet_close():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 12, ms=1)             # its FIN carries the ACK of the client's FIN
    s.c(".", 12, 10)
    r = run(s)
    assert r.states[6:] == [("FIN_WAIT_1", "CLOSE_WAIT"), ("TIME_WAIT", "LAST_ACK"),
                            ("TIME_WAIT", "CLOSED")]
    assert r.events[8] == ("fin_acked", "time_wait_entered")
    assert r.path("client")[-3:] == ["FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
    assert r.life.teardown == "3way"


def test_simultaneous_close():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 11)                   # sent before the client's FIN arrived: they cross
    s.c(".", 12, 10)
    s.s(".", 10, 12)
    r = run(s)
    # the server's FIN shows the client's had not arrived: never CLOSE_WAIT -> CLOSING
    assert r.states[6:] == [("FIN_WAIT_1", "ESTABLISHED"), ("CLOSING", "CLOSING"),
                            ("CLOSING", "TIME_WAIT"), ("TIME_WAIT", "TIME_WAIT")]
    assert r.events[8] == ("simultaneous_close", "state_revised", "state_inferred")
    crossed = [t for t in r.transitions("server") if t.reason == "revise.crossed"]
    assert [(t.old.name, t.new.name, t.revised) for t in crossed] == [
        ("CLOSE_WAIT", "ESTABLISHED", True)]
    assert r.path("server")[-4:] == ["ESTABLISHED", "FIN_WAIT_1", "CLOSING", "TIME_WAIT"]
    life = r.life
    assert (life.teardown, life.time_wait_side) == ("simultaneous", "both")
    assert not life.state_anomalies


def test_half_close():
    s = opened()
    s.c("F.", 11, 9, ms=100)           # shutdown(SHUT_WR)
    s.s(".", 9, 12)
    for k in range(3):                 # the server keeps sending
        s.s("P.", 9 + 7 * k, 12, length=7, ms=50)
        s.c(".", 12, 16 + 7 * k)
    s.s("F.", 30, 12, ms=300)
    s.c(".", 12, 31)
    r = run(s)
    assert r.states[8:14] == [("FIN_WAIT_2", "CLOSE_WAIT")] * 6
    assert r.events[9] == ("half_close",)
    assert r.states[-1] == ("TIME_WAIT", "CLOSED")
    assert r.life.teardown == "half_close" and r.life.bytes == (10, 29)


def test_one_fin_only_is_a_half_close():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s(".", 9, 12)
    r = run(s)
    assert (r.life.teardown, r.life.teardown_complete) == ("half_close", False)


def test_data_crossing_the_fin_is_not_a_half_close():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("P.", 9, 11, length=5)         # sent before the FIN arrived (it does not ACK it)
    s.s("F.", 14, 12)
    s.c(".", 12, 15)
    r = run(s)
    assert "half_close" not in sum(r.events.values(), ())
    assert r.life.teardown == "3way"


# ---------------------------------------------------------------- resends and late segments


def test_fin_resent_after_the_last_ack_was_lost():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 12)
    s.c(".", 12, 10)                   # lost after the capture point...
    s.s("F.", 9, 12, ms=200)           # ...so the server sends its FIN again
    s.c(".", 12, 10)
    r = run(s)
    # the resent FIN shows the last ACK never arrived: LAST-ACK until the second one
    assert r.states[-3:] == [("TIME_WAIT", "LAST_ACK"), ("TIME_WAIT", "LAST_ACK"),
                             ("TIME_WAIT", "CLOSED")]
    revise = [t for t in r.transitions("server") if t.reason == "revise.not_delivered"]
    assert [(t.old.name, t.new.name, t.confidence, t.revised) for t in revise] == [
        ("CLOSED", "LAST_ACK", "inferred", True)]
    assert r.path("server")[-2:] == ["LAST_ACK", "CLOSED"]
    assert not r.life.state_anomalies


def test_resent_data_after_a_fin_is_fine_new_data_is_an_anomaly():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.c("P.", 1, 9, length=10, ms=200)   # a resend of bytes before the FIN
    r = run(s)
    assert not r.life.state_anomalies
    s.c("P.", 12, 9, length=5)           # new bytes after the FIN
    r = run(s)
    assert [a.anomaly for a in r.life.state_anomalies] == ["data_after_fin"]
    assert r.states[-1] == ("FIN_WAIT_1", "CLOSE_WAIT")


def test_time_wait_acks_a_resent_fin():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 12)
    s.c(".", 12, 10)
    s.s("F.", 9, 12, ms=200)
    s.c(".", 12, 10)
    r = run(s)
    assert r.states[-1] == ("TIME_WAIT", "CLOSED")
    assert r.life.time_wait_side == "client"


# ---------------------------------------------------------------- missed packets


def test_fin_not_captured():
    """The client's FIN is missing from the capture; the server's ACK proves it."""
    s = opened()
    s.s(".", 9, 12, ms=100)            # acknowledges one sequence number past the data
    s.s("F.", 9, 12, ms=300)
    s.c(".", 12, 10)
    r = run(s)
    assert r.states[6:] == [("FIN_WAIT_2", "CLOSE_WAIT"), ("TIME_WAIT", "LAST_ACK"),
                            ("TIME_WAIT", "CLOSED")]
    first = [t for t in r.transitions() if t.frame == 7]
    assert [(t.side, t.old.name, t.new.name, t.reason, t.confidence) for t in first] == [
        ("client", "ESTABLISHED", "FIN_WAIT_1", "infer.fin_not_captured", "inferred"),
        ("server", "ESTABLISHED", "CLOSE_WAIT", "infer.fin_not_captured", "inferred"),
        ("client", "FIN_WAIT_1", "FIN_WAIT_2", "close.fin_acked", "assumed"),
    ]
    assert r.events[7] == ("teardown_started", "fin_acked", "state_inferred")
    assert r.life.teardown == "4way"


def test_ack_of_the_fin_not_captured():
    """The server's pure ACK of the client's FIN is missing; its FIN (which ACKs) proves it."""
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 12, ms=300)
    s.c(".", 12, 10)
    r = run(s)
    assert r.states[-2:] == [("TIME_WAIT", "LAST_ACK"), ("TIME_WAIT", "CLOSED")]


# The server's IPv4 IDs in the close tests below: its SYN-ACK and reply count up one by one.
IDS = {2: 99, 5: 100}


def test_ack_of_the_fin_not_captured_its_ip_id_shows():
    """The same capture, with the server's IPv4 IDs: its FIN skips one. The packet missing
    carried no data (the FIN starts where the server's data ended): it was the ACK of the
    client's FIN, sent on its own: a four-packet close (fixtures/life_missing.pcap)."""
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 12, ms=300)
    s.c(".", 12, 10)
    r = run(s, ip_ids={**IDS, 8: 102})
    assert r.states[-3:] == [("FIN_WAIT_1", "CLOSE_WAIT"), ("TIME_WAIT", "LAST_ACK"),
                             ("TIME_WAIT", "CLOSED")]
    at8 = [(t.side, t.old.name, t.new.name, t.reason, t.confidence) for t in r.transitions()
           if t.frame == 8]
    assert at8 == [
        ("server", "CLOSE_WAIT", "LAST_ACK", "close.passive_fin", "observed"),
        ("client", "FIN_WAIT_1", "FIN_WAIT_2", "infer.fin_ack_not_captured", "inferred"),
        ("client", "FIN_WAIT_2", "TIME_WAIT", "close.time_wait", "assumed"),
    ]
    assert r.events[8] == ("fin_acked", "time_wait_entered", "state_inferred")
    life = r.life
    assert (life.teardown, life.teardown_inferred) == ("4way", "infer.fin_ack_not_captured")
    assert life.as_dict()["teardown_inferred"] == "infer.fin_ack_not_captured"
    for batch in (1, 2, 5):
        assert run(s, batch=batch, ip_ids={**IDS, 8: 102}).life.as_dict() == life.as_dict()


@pytest.mark.parametrize("ids, why", [
    ({**IDS, 8: 101}, "consecutive: the FIN/ACK is merged"),
    ({2: 0, 5: 100, 8: 102}, "one ID before the FIN is not yet a counter"),
    ({2: 99, 5: 5000, 8: 5002}, "not one by one"),
    ({}, "no IDs"),
])
def test_three_packet_close_unless_the_ip_ids_show_a_missing_packet(ids, why):
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 9, 12, ms=300)
    s.c(".", 12, 10)
    life = run(s, ip_ids=ids).life
    assert (life.teardown, life.teardown_inferred) == ("3way", None), why
    assert all(t.confidence != "inferred" for t in life.transitions), why


def test_a_missed_packet_with_data_is_not_the_ack():
    """The server's FIN starts beyond its data seen: what the capture missed carried data,
    which says nothing about a separate ACK."""
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s("F.", 19, 12, ms=300)          # bytes 9..18 not captured
    life = run(s, ip_ids={**IDS, 8: 102}).life
    assert life.teardown_inferred is None
    assert "infer.fin_ack_not_captured" not in {t.reason for t in life.transitions}


def test_a_missed_packet_before_a_pure_ack_changes_nothing():
    """Only a FIN can look like a merged FIN/ACK: a pure ACK after a gap is the ACK."""
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s(".", 9, 12, ms=40)
    s.s("F.", 9, 12, ms=300)
    s.c(".", 12, 10)
    life = run(s, ip_ids={**IDS, 8: 102, 9: 103}).life
    assert (life.teardown, life.teardown_inferred) == ("4way", None)
    assert all(t.confidence != "inferred" for t in life.transitions)


def test_last_fin_not_captured():
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s(".", 9, 12)
    s.c(".", 12, 10, ms=300)           # the client acknowledges a server FIN never captured
    r = run(s)
    assert r.states[-1] == ("TIME_WAIT", "CLOSED")
    assert "state_inferred" in r.events[9]
    assert r.life.teardown == "4way" and r.life.time_wait_side == "client"


# ---------------------------------------------------------------- RST in any state


def _reach(state: str) -> tuple[Script, int, int]:
    """A script whose last frame leaves the *client* in `state`; (script, cseq, sseq)."""
    s = Script()
    s.c("S", 0, 0)
    if state == "SYN_SENT":
        return s, 1, 0
    s.s("S.", 0, 1)
    s.c(".", 1, 1)
    if state == "ESTABLISHED":
        return s, 1, 1
    if state in ("FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", "CLOSING"):
        s.c("F.", 1, 1)
        if state == "FIN_WAIT_2":
            s.s(".", 1, 2)
        if state == "TIME_WAIT":
            s.s("F.", 1, 2)
        if state == "CLOSING":
            s.s("F.", 1, 1)
        return s, 2, 2 if state in ("TIME_WAIT", "CLOSING") else 1
    s.s("F.", 1, 1)                    # the server closes first
    s.c(".", 1, 2)
    if state == "LAST_ACK":
        s.c("F.", 1, 2)
        return s, 2, 2
    return s, 1, 2                     # CLOSE_WAIT


@pytest.mark.parametrize("state", ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSING",
                                   "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK"])
@pytest.mark.parametrize("who", ["client", "server"])
def test_rst_in_any_state(state, who):
    s, cseq, sseq = _reach(state)
    before = run(s).states[-1]
    assert before[0] == state
    if who == "client":
        s.c("R.", cseq, sseq)
    else:
        s.s("R.", sseq, cseq)
    r = run(s)
    life = r.life
    assert r.states[-1][0 if who == "client" else 1] == "CLOSED"
    if state == "SYN_SENT" and who == "client":
        assert r.states[-1] == ("CLOSED", "CLOSED")
    elif not (state == "TIME_WAIT" and who == "server" and before[1] == "CLOSED"):
        assert r.states[-1] == ("CLOSED", "CLOSED"), (state, who, r.states)
    assert not life.state_anomalies
    if state in ("SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT"):
        assert life.teardown == f"rst_{who}"


def test_data_crossing_a_rst():
    s = opened()
    s.s("R.", 9, 11, ms=100)
    s.c("P.", 11, 9, length=10)        # sent before the RST arrived
    r = run(s)
    # the data shows the RST had not arrived when the client sent it
    assert r.states[-2:] == [("ESTABLISHED", "CLOSED"), ("CLOSED", "CLOSED")]
    assert r.path("client")[-2:] == ["ESTABLISHED", "CLOSED"]
    crossed = [t.reason for t in r.transitions("client")][-2:]
    assert crossed == ["revise.crossed", "reset.received"]
    assert not r.life.state_anomalies


@pytest.mark.parametrize("batch", [None, 1])
def test_data_after_fin_while_half_closed_whatever_the_batches(batch):
    """Half-closed is a steady state for numpy, except data from the side that closed:
    that is still seen when it arrives at the start of a new batch (found by hypothesis)."""
    s = opened()
    s.c("F.", 11, 9, ms=100)
    s.s(".", 9, 12)
    s.s("P.", 9, 12, length=5)         # half-close: the server still sends
    s.c(".", 12, 14)
    s.c("P.", 12, 14, length=3)        # new data after the client's FIN
    r = run(s, batch=batch)
    assert [a.anomaly for a in r.life.state_anomalies] == ["data_after_fin"]
    assert r.events[11] == ("state_anomaly",)
