"""Captures that begin mid-connection: UNKNOWN until the first evidence, then inferred."""
from __future__ import annotations

from tests.analysis_helpers import Script
from tests.states_helpers import run


def test_data_first():
    s = Script()
    s.c("P.", 100, 50, length=10)
    s.s(".", 50, 110)
    r = run(s)
    assert r.states == [("ESTABLISHED", "ESTABLISHED")] * 2
    assert r.events == {1: ("state_inferred",)}
    assert [(t.side, t.old.name, t.new.name, t.reason, t.confidence) for t in r.transitions()] == [
        ("client", "UNKNOWN", "ESTABLISHED", "infer.midstream", "inferred"),
        ("server", "UNKNOWN", "ESTABLISHED", "infer.midstream", "inferred"),
    ]
    life = r.life
    assert (life.handshake, life.handshake_complete, life.role_guessed) == (
        "midstream", False, True)
    assert life.handshake_rtt is None


def test_the_first_segment_is_a_fin():
    s = Script()
    s.c("F.", 100, 50)
    s.s(".", 50, 101)
    s.s("F.", 50, 101)
    s.c(".", 101, 51)
    r = run(s)
    assert r.states == [("FIN_WAIT_1", "CLOSE_WAIT"), ("FIN_WAIT_2", "CLOSE_WAIT"),
                        ("TIME_WAIT", "LAST_ACK"), ("TIME_WAIT", "CLOSED")]
    assert r.life.teardown == "4way" and r.life.handshake == "midstream"


def test_the_first_segment_is_a_rst():
    s = Script()
    s.c("R", 100, 0)
    r = run(s)
    assert r.states == [("CLOSED", "CLOSED")]
    assert r.life.teardown == "rst_client"


def test_unknown_until_evidence_without_ack():
    """A segment with no ACK bit and no data says nothing about either side."""
    s = Script()
    s.c("", 100, 0)            # no flags at all
    r = run(s)
    assert r.states == [("UNKNOWN", "UNKNOWN")]
    s.c("P.", 100, 50, length=5)
    r = run(s)
    assert r.states[-1] == ("ESTABLISHED", "ESTABLISHED")


def test_roles_swapped_when_the_handshake_shows_up():
    """The engine guesses roles from the first segment and fixes them when a SYN appears;
    the tracker follows, so each side's state stays with the right endpoint."""
    s = Script()
    s.s("P.", 1, 1, length=10)     # the server's data, captured first: guessed the client
    s.c("S", 0, 0)                 # the real client's SYN (a reordered capture)
    s.s("S.", 0, 1)
    s.c(".", 1, 11)
    s.c("F.", 1, 11, ms=100)
    r = run(s)
    life = r.life
    assert not life.role_guessed and life.handshake == "3way"
    assert r.states[-1] == ("FIN_WAIT_1", "CLOSE_WAIT")
    assert life.packets == (3, 2) and life.bytes == (0, 10)
