"""The TCP endpoint state machine: both endpoints' RFC 9293 states, seen from a capture.

A capture point sees a segment once, somewhere between its sender and its
receiver. So each segment changes two states, with different certainty:

* the **sender's** state changes because it sent the segment (``observed``);
* the **receiver's** state changes when the segment arrives, which the capture
  cannot see: tcpscope assumes delivery (``assumed``) and takes the assumption
  back when the receiver's own later segments contradict it (a SYN-ACK sent
  again means the ACK never arrived; a FIN that does not acknowledge the peer's
  FIN was sent before that FIN arrived);
* a state deduced from later evidence (a capture that begins mid-connection, a
  packet the capture missed) is ``inferred``.

The design is a hybrid of table and methods (STYLE.md, after h11 and smoltcp):

* `TRANSITIONS` maps ``(State, Event)`` to the next state. Events are relative to
  one endpoint (``send_fin``, ``recv_fin``, ...). Every pair that is absent is an
  anomaly: it is recorded (`StateAnomaly`), never raised, and the segment is
  never dropped. A self-loop (``new == old``) is a defined "nothing changes".
* Guards and side effects are small methods (``_guard_*``) with the RFC 9293
  section they follow; a guard may refuse a transition (an anomaly with its own
  id) or pick a reason. They are listed in `GUARDS`.
* Every change goes through ``ConnectionStates._set_state`` and is recorded as a
  `Transition` with its frame, time, side, reason (stable id + sentence) and
  confidence.

`render_text`, `render_table` and `render_mermaid` draw the table (docs/states.md
shows them). Sequence numbers are the engine's 64-bit relative numbers, so
plain comparisons are safe (no raw 32-bit ``<`` anywhere).

The machine is sans-IO: `ConnectionStates.on_segment` takes one segment's
facts; `lifecycle.LifecycleTracker` feeds it from the engine's batches.
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "State", "Event", "Confidence", "TRANSITIONS", "INFERRED", "GUARDS", "REASONS",
    "anomaly_id", "Transition", "StateAnomaly", "Endpoint", "ConnectionStates",
    "render_text", "render_table", "render_mermaid", "STATE_NAMES", "EVENT_NAMES",
    "SYNCHRONIZED", "ANY_SEGMENT",
]


class State(IntEnum):
    """RFC 9293 §3.3.2 states, plus the observer's UNKNOWN ("no evidence yet")."""

    UNKNOWN = 0
    CLOSED = 1
    LISTEN = 2
    SYN_SENT = 3
    SYN_RECEIVED = 4
    ESTABLISHED = 5
    FIN_WAIT_1 = 6
    FIN_WAIT_2 = 7
    CLOSE_WAIT = 8
    CLOSING = 9
    LAST_ACK = 10
    TIME_WAIT = 11


class Event(IntEnum):
    """What one segment means to one endpoint: ``send_*`` to its sender, ``recv_*`` to its receiver.

    A segment gives its sender events in this order: ``send_rst`` alone, or
    ``send_syn`` / ``send_synack``, ``send_ack_of_syn`` (a non-SYN segment with the
    ACK bit: after the handshake every ACK covers the peer's SYN), ``send_data``,
    ``send_fin``. Its receiver gets ``recv_rst`` alone, or ``recv_syn`` /
    ``recv_synack``, ``recv_ack_of_syn``, ``recv_ack_of_fin`` (the ACK covers the
    receiver's FIN), ``recv_data``, ``recv_fin`` -- RFC 9293 §3.10.7.4's order:
    the ACK field before the text, the text before the FIN.
    """

    SEND_SYN = 0
    SEND_SYNACK = 1
    SEND_ACK_OF_SYN = 2
    SEND_DATA = 3
    SEND_FIN = 4
    SEND_RST = 5
    RECV_SYN = 6
    RECV_SYNACK = 7
    RECV_ACK_OF_SYN = 8
    RECV_ACK_OF_FIN = 9
    RECV_DATA = 10
    RECV_FIN = 11
    RECV_RST = 12


class Confidence:
    """How a transition is known (the values are the strings)."""

    OBSERVED = "observed"  #: the endpoint changed state by sending the segment
    ASSUMED = "assumed"    #: the receiver's change, assuming the segment arrived
    INFERRED = "inferred"  #: deduced from later evidence (mid-stream start, missed packet)


S, E = State, Event
STATE_NAMES: tuple[str, ...] = tuple(s.name for s in State)
EVENT_NAMES: tuple[str, ...] = tuple(e.name.lower() for e in Event)
#: States in which the handshake is over (RFC 9293 §3.3.2 "synchronized states").
SYNCHRONIZED = frozenset({S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING,
                          S.LAST_ACK, S.TIME_WAIT})

# ---------------------------------------------------------------------------
# The table. Absent pairs are anomalies; (s, e): s is a defined no-change.
# Section numbers are RFC 9293's.
# ---------------------------------------------------------------------------

_SELF_IN_SYNC = {  # segments that change nothing in a synchronized state
    E.SEND_ACK_OF_SYN, E.RECV_SYN, E.RECV_SYNACK, E.RECV_ACK_OF_SYN, E.RECV_DATA,
}

TRANSITIONS: dict[tuple[State, Event], State] = {
    # -- observer-only: no evidence yet (capture began mid-connection) --------
    (S.UNKNOWN, E.SEND_SYN): S.SYN_SENT,
    (S.UNKNOWN, E.SEND_SYNACK): S.SYN_RECEIVED,        # inferred: it had received a SYN
    (S.UNKNOWN, E.SEND_ACK_OF_SYN): S.ESTABLISHED,     # inferred: only a synchronized TCP ACKs
    (S.UNKNOWN, E.SEND_DATA): S.ESTABLISHED,           # inferred
    (S.UNKNOWN, E.SEND_FIN): S.FIN_WAIT_1,             # inferred: taken as a close from ESTABLISHED
    (S.UNKNOWN, E.SEND_RST): S.CLOSED,
    (S.UNKNOWN, E.RECV_SYN): S.SYN_RECEIVED,
    (S.UNKNOWN, E.RECV_SYNACK): S.ESTABLISHED,         # inferred: it had sent the SYN
    (S.UNKNOWN, E.RECV_ACK_OF_SYN): S.ESTABLISHED,     # inferred
    (S.UNKNOWN, E.RECV_ACK_OF_FIN): S.UNKNOWN,         # not enough to say which close
    (S.UNKNOWN, E.RECV_DATA): S.ESTABLISHED,           # inferred
    (S.UNKNOWN, E.RECV_FIN): S.CLOSE_WAIT,             # inferred
    (S.UNKNOWN, E.RECV_RST): S.CLOSED,
    # -- CLOSED (§3.10.7.1): no connection; a non-RST segment is answered by RST
    (S.CLOSED, E.SEND_SYN): S.SYN_SENT,                # active OPEN (§3.10.1)
    (S.CLOSED, E.SEND_RST): S.CLOSED,                  # the RST a closed port answers with
    (S.CLOSED, E.RECV_SYN): S.CLOSED,                  # answered with RST (§3.10.7.1)
    (S.CLOSED, E.RECV_SYNACK): S.CLOSED,
    (S.CLOSED, E.RECV_ACK_OF_SYN): S.CLOSED,
    (S.CLOSED, E.RECV_ACK_OF_FIN): S.CLOSED,
    (S.CLOSED, E.RECV_DATA): S.CLOSED,
    (S.CLOSED, E.RECV_FIN): S.CLOSED,
    (S.CLOSED, E.RECV_RST): S.CLOSED,                  # "an incoming RST is discarded"
    # -- LISTEN (§3.10.7.2) ----------------------------------------------------
    (S.LISTEN, E.SEND_SYN): S.SYN_SENT,                # SEND on a listening TCB (§3.10.2)
    (S.LISTEN, E.SEND_SYNACK): S.SYN_RECEIVED,         # inferred: a SYN the capture missed
    (S.LISTEN, E.SEND_RST): S.LISTEN,                  # RST to a stray ACK; still listening
    (S.LISTEN, E.RECV_SYN): S.SYN_RECEIVED,            # third: SYN -> SYN-RECEIVED, send SYN,ACK
    (S.LISTEN, E.RECV_RST): S.LISTEN,                  # first: an incoming RST is ignored
    # -- SYN-SENT (§3.10.7.3) --------------------------------------------------
    (S.SYN_SENT, E.SEND_SYN): S.SYN_SENT,              # retransmission of the SYN
    (S.SYN_SENT, E.SEND_SYNACK): S.SYN_RECEIVED,       # inferred: the peer's SYN was missed
    (S.SYN_SENT, E.SEND_ACK_OF_SYN): S.ESTABLISHED,    # inferred: the SYN-ACK was missed
    (S.SYN_SENT, E.SEND_RST): S.CLOSED,
    (S.SYN_SENT, E.RECV_SYN): S.SYN_RECEIVED,          # fourth: simultaneous open
    (S.SYN_SENT, E.RECV_SYNACK): S.ESTABLISHED,        # fourth: SYN,ACK acking our SYN
    (S.SYN_SENT, E.RECV_RST): S.CLOSED,                # second: RST with an acceptable ACK
    # -- SYN-RECEIVED (§3.10.7.4) ----------------------------------------------
    (S.SYN_RECEIVED, E.SEND_SYNACK): S.SYN_RECEIVED,   # the SYN-ACK and its retransmissions
    (S.SYN_RECEIVED, E.SEND_ACK_OF_SYN): S.SYN_RECEIVED,
    (S.SYN_RECEIVED, E.SEND_DATA): S.ESTABLISHED,      # inferred (guard: not with TFO)
    (S.SYN_RECEIVED, E.SEND_FIN): S.FIN_WAIT_1,        # CLOSE in SYN-RECEIVED (§3.10.4)
    (S.SYN_RECEIVED, E.SEND_RST): S.CLOSED,            # reject, or abort
    (S.SYN_RECEIVED, E.RECV_SYN): S.SYN_RECEIVED,      # retransmitted SYN: SYN-ACK again
    (S.SYN_RECEIVED, E.RECV_SYNACK): S.ESTABLISHED,    # simultaneous open (fifth)
    (S.SYN_RECEIVED, E.RECV_ACK_OF_SYN): S.ESTABLISHED,  # fifth: SND.UNA < SEG.ACK =< SND.NXT
    (S.SYN_RECEIVED, E.RECV_DATA): S.SYN_RECEIVED,     # data on the SYN (TFO)
    (S.SYN_RECEIVED, E.RECV_FIN): S.CLOSE_WAIT,        # eighth
    (S.SYN_RECEIVED, E.RECV_RST): S.CLOSED,            # second (see _guard_rst_in_syn_received)
    # -- ESTABLISHED ----------------------------------------------------------
    (S.ESTABLISHED, E.SEND_DATA): S.ESTABLISHED,
    (S.ESTABLISHED, E.SEND_FIN): S.FIN_WAIT_1,         # CLOSE (§3.10.4)
    (S.ESTABLISHED, E.SEND_RST): S.CLOSED,             # ABORT (§3.10.5)
    (S.ESTABLISHED, E.RECV_FIN): S.CLOSE_WAIT,         # eighth
    (S.ESTABLISHED, E.RECV_RST): S.CLOSED,             # second
    # -- FIN-WAIT-1 ------------------------------------------------------------
    (S.FIN_WAIT_1, E.SEND_DATA): S.FIN_WAIT_1,         # guard: only bytes before the FIN
    (S.FIN_WAIT_1, E.SEND_FIN): S.FIN_WAIT_1,          # FIN retransmission
    (S.FIN_WAIT_1, E.SEND_RST): S.CLOSED,
    (S.FIN_WAIT_1, E.RECV_ACK_OF_FIN): S.FIN_WAIT_2,   # fifth: our FIN is acknowledged
    (S.FIN_WAIT_1, E.RECV_FIN): S.CLOSING,             # eighth: FIN unacked: simultaneous close
    (S.FIN_WAIT_1, E.RECV_RST): S.CLOSED,
    # -- FIN-WAIT-2 ------------------------------------------------------------
    (S.FIN_WAIT_2, E.SEND_DATA): S.FIN_WAIT_2,         # guard
    (S.FIN_WAIT_2, E.SEND_RST): S.CLOSED,
    (S.FIN_WAIT_2, E.RECV_ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_2, E.RECV_FIN): S.TIME_WAIT,           # eighth
    (S.FIN_WAIT_2, E.RECV_RST): S.CLOSED,
    # -- CLOSE-WAIT ------------------------------------------------------------
    (S.CLOSE_WAIT, E.SEND_DATA): S.CLOSE_WAIT,         # half-close: it may still send (§3.6)
    (S.CLOSE_WAIT, E.SEND_FIN): S.LAST_ACK,            # CLOSE in CLOSE-WAIT (§3.10.4)
    (S.CLOSE_WAIT, E.SEND_RST): S.CLOSED,
    (S.CLOSE_WAIT, E.RECV_FIN): S.CLOSE_WAIT,          # FIN retransmission
    (S.CLOSE_WAIT, E.RECV_RST): S.CLOSED,
    # -- CLOSING ---------------------------------------------------------------
    (S.CLOSING, E.SEND_DATA): S.CLOSING,               # guard
    (S.CLOSING, E.SEND_FIN): S.CLOSING,
    (S.CLOSING, E.SEND_RST): S.CLOSED,
    (S.CLOSING, E.RECV_ACK_OF_FIN): S.TIME_WAIT,       # fifth
    (S.CLOSING, E.RECV_FIN): S.CLOSING,
    (S.CLOSING, E.RECV_RST): S.CLOSED,
    # -- LAST-ACK --------------------------------------------------------------
    (S.LAST_ACK, E.SEND_DATA): S.LAST_ACK,             # guard
    (S.LAST_ACK, E.SEND_FIN): S.LAST_ACK,              # FIN retransmission
    (S.LAST_ACK, E.SEND_RST): S.CLOSED,
    (S.LAST_ACK, E.RECV_ACK_OF_FIN): S.CLOSED,         # fifth: the last ACK
    (S.LAST_ACK, E.RECV_FIN): S.LAST_ACK,
    (S.LAST_ACK, E.RECV_RST): S.CLOSED,
    # -- TIME-WAIT -------------------------------------------------------------
    (S.TIME_WAIT, E.SEND_DATA): S.TIME_WAIT,           # guard
    (S.TIME_WAIT, E.SEND_RST): S.CLOSED,
    (S.TIME_WAIT, E.RECV_ACK_OF_FIN): S.TIME_WAIT,
    (S.TIME_WAIT, E.RECV_FIN): S.TIME_WAIT,            # a resent FIN: ACK again, restart 2 MSL
    (S.TIME_WAIT, E.RECV_RST): S.CLOSED,               # second (Linux: tcp_rfc1337 = 0)
}
for _s in SYNCHRONIZED:
    for _e in _SELF_IN_SYNC:
        TRANSITIONS[(_s, _e)] = _s
del _s, _e

#: Edges that are deductions (their transitions are ``inferred``, whatever the direction).
INFERRED: frozenset[tuple[State, Event]] = frozenset({
    (S.UNKNOWN, E.SEND_SYNACK), (S.UNKNOWN, E.SEND_ACK_OF_SYN), (S.UNKNOWN, E.SEND_DATA),
    (S.UNKNOWN, E.SEND_FIN), (S.UNKNOWN, E.RECV_SYNACK), (S.UNKNOWN, E.RECV_ACK_OF_SYN),
    (S.UNKNOWN, E.RECV_DATA), (S.UNKNOWN, E.RECV_FIN),
    (S.LISTEN, E.SEND_SYNACK), (S.SYN_SENT, E.SEND_SYNACK), (S.SYN_SENT, E.SEND_ACK_OF_SYN),
    (S.SYN_RECEIVED, E.SEND_DATA),
})

#: Why each state-changing edge happens: (state, event) -> (stable id, sentence).
REASONS: dict[tuple[State, Event], tuple[str, str]] = {
    (S.UNKNOWN, E.SEND_SYN): ("open.active", "it sent a SYN: an active open (RFC 9293 §3.5)"),
    (S.UNKNOWN, E.SEND_SYNACK): (
        "infer.syn_not_captured",
        "it sent a SYN-ACK, so it had received a SYN the capture does not show (§3.10.7.2)"),
    (S.UNKNOWN, E.SEND_ACK_OF_SYN): (
        "infer.midstream",
        "the capture begins mid-connection; only a synchronized TCP acknowledges (§3.3.2)"),
    (S.UNKNOWN, E.SEND_DATA): (
        "infer.midstream", "the capture begins mid-connection; it sends data (§3.3.2)"),
    (S.UNKNOWN, E.SEND_FIN): (
        "infer.midstream_fin",
        "its first segment in the capture is a FIN; taken as a close from ESTABLISHED (§3.6)"),
    (S.UNKNOWN, E.SEND_RST): ("reset.sent", "it sent a RST: it aborts the connection (§3.5.2)"),
    (S.UNKNOWN, E.RECV_SYN): (
        "open.syn_received", "it receives a SYN: it answers SYN-ACK and waits for the ACK "
        "(§3.10.7.2)"),
    (S.UNKNOWN, E.RECV_SYNACK): (
        "infer.syn_not_captured",
        "it receives a SYN-ACK for a SYN the capture does not show (§3.10.7.3)"),
    (S.UNKNOWN, E.RECV_ACK_OF_SYN): (
        "infer.midstream", "the capture begins mid-connection; it is being acknowledged (§3.3.2)"),
    (S.UNKNOWN, E.RECV_DATA): (
        "infer.midstream", "the capture begins mid-connection; it receives data (§3.3.2)"),
    (S.UNKNOWN, E.RECV_FIN): (
        "infer.midstream_fin", "the capture begins mid-connection; it receives a FIN (§3.10.7.4)"),
    (S.UNKNOWN, E.RECV_RST): (
        "reset.received", "it receives a RST: the connection is reset (§3.5.3)"),
    (S.CLOSED, E.SEND_SYN): ("open.active", "it sent a SYN: an active open (§3.5)"),
    (S.LISTEN, E.SEND_SYN): (
        "open.active_from_listen",
        "it sent a SYN of its own before the peer's SYN reached it (§3.10.2; simultaneous open, "
        "§3.5)"),
    (S.LISTEN, E.SEND_SYNACK): (
        "infer.syn_not_captured",
        "it sent a SYN-ACK, so it had received a SYN the capture does not show (§3.10.7.2)"),
    (S.LISTEN, E.RECV_SYN): (
        "open.syn_received",
        "it receives a SYN while listening: it answers SYN-ACK and waits for the ACK (§3.10.7.2)"),
    (S.SYN_SENT, E.SEND_SYNACK): (
        "infer.peer_syn_not_captured",
        "it sent a SYN-ACK from SYN-SENT: it had received the peer's SYN (simultaneous open), "
        "which the capture does not show (§3.10.7.3)"),
    (S.SYN_SENT, E.SEND_ACK_OF_SYN): (
        "infer.synack_not_captured",
        "it acknowledges the peer's SYN, so it had received a SYN-ACK the capture does not show "
        "(§3.10.7.3)"),
    (S.SYN_SENT, E.SEND_RST): ("reset.sent", "it sent a RST: it gives up the attempt (§3.5.2)"),
    (S.SYN_SENT, E.RECV_SYN): (
        "open.simultaneous",
        "it receives the peer's SYN while its own is unanswered: simultaneous open (§3.10.7.3)"),
    (S.SYN_SENT, E.RECV_SYNACK): (
        "open.synack_received",
        "it receives a SYN-ACK acknowledging its SYN: it ACKs and is established (§3.10.7.3)"),
    (S.SYN_SENT, E.RECV_RST): (
        "reset.refused",
        "it receives a RST acknowledging its SYN: connection refused (§3.10.7.3)"),
    (S.SYN_RECEIVED, E.SEND_DATA): (
        "infer.ack_not_captured",
        "it sends data, so the ACK of its SYN had arrived, though the capture does not show it "
        "(§3.10.7.4)"),
    (S.SYN_RECEIVED, E.SEND_FIN): (
        "close.active", "it sent a FIN before the handshake ended: CLOSE in SYN-RECEIVED "
        "(§3.10.4)"),
    (S.SYN_RECEIVED, E.SEND_RST): (
        "reset.sent", "it sent a RST: it aborts the connection (§3.5.2)"),
    (S.SYN_RECEIVED, E.RECV_SYNACK): (
        "open.simultaneous_synack",
        "it receives a SYN-ACK acknowledging its SYN: simultaneous open completes (§3.10.7.4)"),
    (S.SYN_RECEIVED, E.RECV_ACK_OF_SYN): (
        "open.ack_of_syn", "it receives the ACK of its SYN: the handshake is complete (§3.10.7.4)"),
    (S.SYN_RECEIVED, E.RECV_FIN): (
        "close.passive", "it receives a FIN: the peer will send no more (§3.10.7.4)"),
    (S.SYN_RECEIVED, E.RECV_RST): (
        "reset.received",
        "it receives a RST: the attempt is over (§3.10.7.4; a listening socket stays, but it is "
        "not this connection)"),
    (S.ESTABLISHED, E.SEND_FIN): (
        "close.active", "it sent a FIN: it closes its direction first (§3.6, §3.10.4)"),
    (S.ESTABLISHED, E.SEND_RST): (
        "reset.sent", "it sent a RST: it aborts the connection (§3.10.5)"),
    (S.ESTABLISHED, E.RECV_FIN): (
        "close.passive",
        "it receives a FIN: the peer will send no more; it waits for its application to close "
        "(§3.10.7.4)"),
    (S.ESTABLISHED, E.RECV_RST): (
        "reset.received", "it receives a RST: the connection is reset (§3.10.7.4)"),
    (S.FIN_WAIT_1, E.SEND_RST): ("reset.sent", "it sent a RST: it aborts the close (§3.10.5)"),
    (S.FIN_WAIT_1, E.RECV_ACK_OF_FIN): (
        "close.fin_acked", "its FIN is acknowledged; it waits for the peer's FIN (§3.10.7.4)"),
    (S.FIN_WAIT_1, E.RECV_FIN): (
        "close.simultaneous",
        "it receives the peer's FIN before the ACK of its own: simultaneous close (§3.10.7.4, "
        "§3.6)"),
    (S.FIN_WAIT_1, E.RECV_RST): (
        "reset.received", "it receives a RST: the connection is reset (§3.10.7.4)"),
    (S.FIN_WAIT_2, E.SEND_RST): ("reset.sent", "it sent a RST: it aborts the connection (§3.10.5)"),
    (S.FIN_WAIT_2, E.RECV_FIN): (
        "close.time_wait",
        "it receives the peer's FIN after its own was acknowledged: it ACKs and waits 2 MSL in "
        "TIME-WAIT (§3.10.7.4)"),
    (S.FIN_WAIT_2, E.RECV_RST): (
        "reset.received", "it receives a RST: the connection is reset (§3.10.7.4)"),
    (S.CLOSE_WAIT, E.SEND_FIN): (
        "close.passive_fin", "it sent its FIN after the peer's: it waits for the last ACK "
        "(§3.10.4)"),
    (S.CLOSE_WAIT, E.SEND_RST): ("reset.sent", "it sent a RST: it aborts the connection (§3.10.5)"),
    (S.CLOSE_WAIT, E.RECV_RST): (
        "reset.received", "it receives a RST: the connection is reset (§3.10.7.4)"),
    (S.CLOSING, E.SEND_RST): ("reset.sent", "it sent a RST: it aborts the close (§3.10.5)"),
    (S.CLOSING, E.RECV_ACK_OF_FIN): (
        "close.closing_acked",
        "its FIN is acknowledged after a simultaneous close: TIME-WAIT (§3.10.7.4)"),
    (S.CLOSING, E.RECV_RST): ("reset.received", "it receives a RST (§3.10.7.4)"),
    (S.LAST_ACK, E.SEND_RST): (
        "reset.sent", "it sent a RST instead of waiting for the last ACK (§3.10.5)"),
    (S.LAST_ACK, E.RECV_ACK_OF_FIN): (
        "close.last_ack", "the last ACK arrives: the connection is closed (§3.10.7.4)"),
    (S.LAST_ACK, E.RECV_RST): ("reset.received", "it receives a RST (§3.10.7.4)"),
    (S.TIME_WAIT, E.SEND_RST): ("reset.sent", "it sent a RST from TIME-WAIT (§3.10.5)"),
    (S.TIME_WAIT, E.RECV_RST): (
        "reset.received",
        "it receives a RST in TIME-WAIT and closes at once (§3.10.7.4; RFC 1337 describes the "
        "hazard)"),
}

#: Reasons set by guards and by the observer's own corrections (not table edges).
EXTRA_REASONS: dict[str, str] = {
    "reset.reject": "it answered the SYN with a RST: nothing listens on that port (§3.10.7.1); "
                    "the SYN-RECEIVED assumed for it never existed",
    "infer.fin_not_captured": "the peer acknowledges a FIN the capture does not show "
                              "(one sequence number past its last data)",
    "infer.fin_ack_not_captured": "its FIN had been acknowledged by a packet the capture does "
                                  "not show: the peer's IPv4 IDs, one per packet so far, skip "
                                  "just before this segment, which starts where the peer's data "
                                  "ended, so the missing packet carried no data: an ACK of its "
                                  "own, a four-packet close (§3.10.7.4)",
    "revise.not_delivered": "it sent again what it would not have, had the segment that changed "
                            "its state arrived: that segment was lost after the capture point",
    "revise.crossed": "it sent its segment before the peer's reached it (they crossed on the "
                      "way); the peer's segment takes effect afterwards",
}

#: Anomaly ids set by guards (the table's own anomalies are ``<event>_in_<state>``).
GUARD_ANOMALIES: dict[str, str] = {
    "synack_bad_ack": "a SYN-ACK whose ACK does not acknowledge the SYN (§3.10.7.3 first: "
                      "not acceptable)",
    "rst_not_acceptable": "a RST in SYN-SENT that does not acknowledge the SYN is dropped "
    "(§3.10.7.3 second)",
    "data_after_fin": "new data beyond the sender's own FIN (§3.10.4: no SEND after CLOSE)",
}

#: (state, event) pairs whose transition a guard may refuse or re-explain, and the guard.
GUARDS: dict[tuple[State, Event], str] = {
    (S.SYN_SENT, E.RECV_SYNACK): "_guard_synack_acceptable",
    (S.SYN_RECEIVED, E.RECV_SYNACK): "_guard_synack_acceptable",
    (S.SYN_SENT, E.RECV_RST): "_guard_rst_in_syn_sent",
    (S.SYN_RECEIVED, E.SEND_DATA): "_guard_data_in_syn_received",
    (S.SYN_RECEIVED, E.SEND_RST): "_guard_reject",
    **{(s, E.SEND_DATA): "_guard_data_before_fin"
       for s in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT)},
}


def anomaly_id(state: State | int, event: Event | int) -> str:
    """The id of the anomaly a (state, event) pair outside the table records."""
    return f"{EVENT_NAMES[event]}_in_{STATE_NAMES[state].lower()}"


class Transition(NamedTuple):
    """One change of one endpoint's state."""

    frame: int          #: the frame that caused it
    ts_ns: int
    side: str           #: "client" or "server"
    old: State
    new: State
    reason: str         #: stable id, e.g. "close.time_wait"
    sentence: str       #: the reason in words, with its RFC 9293 section
    confidence: str     #: "observed", "assumed" or "inferred"
    event: str          #: the endpoint-relative event ("recv_fin"), or "" for a correction


class StateAnomaly(NamedTuple):
    """A segment whose meaning is not defined in its endpoint's state (recorded, never raised)."""

    frame: int
    ts_ns: int
    side: str
    state: State
    event: str
    anomaly: str        #: stable id: "<event>_in_<state>" or a guard's id
    sentence: str


# Compact lookup tables for the per-segment path (lists index faster than dicts).
_NS, _NE = len(State), len(Event)
_NEXT = [[-1] * _NE for _ in range(_NS)]
for (_st, _ev), _new in TRANSITIONS.items():
    _NEXT[_st][_ev] = int(_new)
_INF = [[(s, e) in INFERRED for e in Event] for s in State]
_GUARD = [[GUARDS.get((s, e)) for e in Event] for s in State]
del _st, _ev, _new
#: True where an event changes nothing and has no guard: the per-segment path skips it.
_SKIP = [[_NEXT[s][e] == s and _GUARD[s][e] is None for e in range(_NE)] for s in range(_NS)]

_UNKNOWN, _CLOSED, _LISTEN = 0, 1, 2
_SYN_SENT, _SYN_RECEIVED, _ESTABLISHED = 3, 4, 5
_FIN_WAIT_1, _FIN_WAIT_2, _CLOSE_WAIT = 6, 7, 8
_CLOSING, _LAST_ACK, _TIME_WAIT = 9, 10, 11
(_SEND_SYN, _SEND_SYNACK, _SEND_ACK, _SEND_DATA, _SEND_FIN, _SEND_RST, _RECV_SYN, _RECV_SYNACK,
 _RECV_ACK, _RECV_ACK_OF_FIN, _RECV_DATA, _RECV_FIN, _RECV_RST) = range(13)
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_OBS, _ASM, _INFC = Confidence.OBSERVED, Confidence.ASSUMED, Confidence.INFERRED


#: `Endpoint.confirm_ack` when any segment from the endpoint confirms its assumed state.
ANY_SEGMENT = -(1 << 63)


class _Pending:
    """An assumed receive not yet confirmed by its receiver's own segments."""

    __slots__ = ("before", "events", "frame", "covers", "is_rst", "reapplied")

    def __init__(self, before, events, frame, covers, is_rst, reapplied):
        self.before = before      # the state before the segment's receive events
        self.events = events      # those events, to apply again if the segment was still in flight
        self.frame = frame
        self.covers = covers      # the ACK value that acknowledges it (SYN/FIN), else None
        self.is_rst = is_rst
        self.reapplied = reapplied


class Endpoint:
    """One side of a connection: its state and what the capture showed it send."""

    __slots__ = ("side", "index", "state", "sent_syn", "sent_synack", "fin_next", "max_end",
                 "pending", "sent_any")

    def __init__(self, side: str, index: int, state: int = _UNKNOWN) -> None:
        self.side = side          # "client" / "server"
        self.index = index        # 0 / 1
        self.state = state
        self.sent_syn = False     # a SYN or SYN-ACK (its ISN is known)
        self.sent_synack = False
        self.fin_next: int | None = None  # relative ACK value that covers its FIN
        self.max_end = -1         # highest relative sequence number it has sent up to (exclusive)
        self.pending: _Pending | None = None
        self.sent_any = False

    @property
    def confirm_ack(self) -> int | None:
        """What an ordinary segment from this endpoint (no SYN, FIN or RST) must carry to
        confirm the state it was assumed to reach by receiving (`_check_pending`'s rule).

        None: it holds no assumption. `ANY_SEGMENT`: any segment from it confirms (it
        received an ACK or data). Otherwise an ACK value: an analysed segment with the ACK
        bit and an ACK at least that high confirms (it received a SYN or FIN). Such a segment
        changes no state, but it ends the assumption, so that a SYN-ACK or FIN it sends later
        is an anomaly rather than a sign the segment was lost: a driver that skips ordinary
        segments (`lifecycle.LifecycleTracker`) applies it all the same (`confirm`).
        """
        p = self.pending
        if p is None:
            return None
        return ANY_SEGMENT if p.covers is None else p.covers

    def confirm(self) -> None:
        """An ordinary segment of its that meets `confirm_ack` was skipped by the driver:
        the assumption stands, as `on_segment` would have decided."""
        self.pending = None

    def __repr__(self) -> str:
        return f"Endpoint({self.side}, {State(self.state).name})"


class ConnectionStates:
    """Both endpoints of one connection, driven segment by segment (sans-IO).

    ``on_segment`` takes what the engine knows of a segment; after it,
    ``changes`` lists this segment's changes as (side index, old, new,
    confidence, reason id) and ``anomaly_count`` the anomalies it recorded.
    ``transitions`` and ``anomalies`` keep everything, unless ``keep=False``.
    """

    __slots__ = ("client", "server", "keep", "transitions", "anomalies", "changes",
                 "anomaly_count", "data_on_syn", "_seg")

    def __init__(self, client_state: int = _UNKNOWN, server_state: int = _UNKNOWN, *,
                 keep: bool = True) -> None:
        self.client = Endpoint("client", 0, int(client_state))
        self.server = Endpoint("server", 1, int(server_state))
        self.keep = keep
        self.transitions: list[Transition] = []
        self.anomalies: list[StateAnomaly] = []
        self.changes: list[tuple[int, int, int, str, str]] = []
        self.anomaly_count = 0
        self.data_on_syn = False
        # The segment being applied: (frame, ts_ns, analysed, has_ack, rel_seq, rel_ack, len)
        self._seg: tuple = (0, 0, False, 0, 0, 0, 0)

    @classmethod
    def for_first_segment(cls, tcp_flags: int, *, keep: bool = True) -> ConnectionStates:
        """Initial states from a connection's first captured segment.

        A pure SYN opens it: the client was CLOSED and the server is assumed to be
        LISTENing. Anything else means the capture began mid-connection: UNKNOWN.
        """
        if tcp_flags & (_SYN | _ACK | _RST) == _SYN:
            return cls(_CLOSED, _LISTEN, keep=keep)
        return cls(keep=keep)

    @property
    def states(self) -> tuple[State, State]:
        return State(self.client.state), State(self.server.state)

    def reads_max_end(self, from_server: bool, tcp_flags: int, analysed: bool,
                      acks_unseen: bool | None, unseen_before: int = 0) -> bool:
        """Whether `on_segment` may read an endpoint's ``max_end`` for this segment.

        It reads the receiver's for the missed-FIN rule (an analysed ACK of data not seen)
        and for the acceptability of a SYN-ACK or RST received in SYN-SENT / SYN-RECEIVED
        (§3.10.7.3), the sender's after packets of its the capture missed. A driver that
        keeps ``max_end`` up to date lazily (it skips segments that change nothing else)
        brings it up to date before such a segment.
        """
        if not analysed:
            return False
        if unseen_before:
            return True
        if tcp_flags & (_SYN | _RST):
            y = self.client if from_server else self.server
            return y.state == _SYN_SENT or y.state == _SYN_RECEIVED
        return bool(tcp_flags & _ACK) and acks_unseen is not False

    def swap_roles(self) -> None:
        """The engine found the roles were the other way round (a handshake seen late)."""
        self.client, self.server = self.server, self.client
        self.client.side, self.client.index = "client", 0
        self.server.side, self.server.index = "server", 1

    # ------------------------------------------------------------------
    # The segment
    # ------------------------------------------------------------------

    def on_segment(self, frame: int, ts_ns: int, from_server: bool, tcp_flags: int,
                   payload_len: int, rel_seq: int, rel_ack: int, next_rel_seq: int,
                   analysed: bool = True, acks_unseen: bool | None = None,
                   unseen_before: int = 0) -> None:
        """Apply one segment: its sender's events (observed), then its receiver's (assumed).

        Args:
            rel_seq, rel_ack, next_rel_seq: the engine's 64-bit relative numbers
                (``rel_ack`` relative to the receiver's base).
            analysed: False when the engine could not analyse the segment
                (``no_seglen``): then only its flags count.
            acks_unseen: whether the ACK goes beyond anything seen from the receiver
                (the engine's ``ack_lost_segment``); None = work it out from the
                segments fed here (a driver that skips segments passes the engine's
                answer and keeps the receiver's ``max_end`` up to date).
            unseen_before: packets of the sender the capture missed just before this
                one, as its IPv4 IDs show (the engine's ``ip_id_gap``). If this segment
                is a FIN, the first to acknowledge the receiver's FIN, and none of them
                carried data (it starts where the sender's data ended), the first ACK of
                the receiver's FIN was one of them, not merged with this FIN: the
                receiver's change is inferred (``infer.fin_ack_not_captured``), a
                four-packet close.
        """
        self.changes = []
        self.anomaly_count = 0
        has_ack = tcp_flags & _ACK
        self._seg = (frame, ts_ns, analysed, has_ack, rel_seq, rel_ack, payload_len)
        if from_server:
            x, y = self.server, self.client
        else:
            x, y = self.client, self.server
        rst = tcp_flags & _RST
        syn = tcp_flags & _SYN
        fin = tcp_flags & _FIN

        # A FIN the capture missed: the ACK covers one sequence number past the receiver's data.
        if (acks_unseen is not False and has_ack and analysed and not syn and not rst
                and y.fin_next is None and y.max_end >= 0 and rel_ack == y.max_end + 1
                and y.state in _CAN_FIN):
            y.fin_next = rel_ack
            self._apply(y, _SEND_FIN, True, conf=_INFC, reason="infer.fin_not_captured")
            self._apply(x, _RECV_FIN, False, conf=_INFC, reason="infer.fin_not_captured")

        # The events (RFC 9293 §3.10.7.4 order), from precomputed tuples.
        if rst:
            send, recv = _RST_SEND, _RST_RECV
        elif syn:
            send = _SYN_SEND[(2 if has_ack else 0) | (1 if fin else 0)]
            recv = _SYN_RECV[(2 if has_ack else 0) | (1 if fin else 0)]
            if payload_len and not has_ack:
                self.data_on_syn = True
        else:
            send = _SEND[(4 if has_ack else 0) | (2 if payload_len else 0) | (1 if fin else 0)]
            acks_fin = (has_ack and analysed and y.fin_next is not None
                        and rel_ack >= y.fin_next)
            acks_syn = has_ack and (not analysed or not y.sent_syn or rel_ack >= 1)
            recv = _RECV[(8 if acks_syn else 0) | (4 if acks_fin else 0)
                         | (2 if payload_len else 0) | (1 if fin else 0)]

        # The sender: a contradiction with an assumed receive comes first.
        reapply = self._check_pending(x, send, syn, fin) if x.pending is not None else None
        row = _SKIP[x.state]
        for e in send:
            if not row[e]:
                self._apply(x, e, True)
                row = _SKIP[x.state]
        if reapply is not None:
            self._reapply(x, reapply)

        # Packets of the sender the capture missed just before its FIN, none with data
        # (the FIN starts where its data ended): ACKs, sent before the FIN.
        acks_missed = (unseen_before > 0 and fin and analysed and not rst and x.max_end >= 0
                       and rel_seq <= x.max_end)

        # What the capture now knows the sender sent.
        x.sent_any = True
        if syn:
            x.sent_syn = True
            if has_ack:
                x.sent_synack = True
        if analysed and not rst:
            if fin and x.fin_next is None:
                x.fin_next = next_rel_seq
            if next_rel_seq > x.max_end:
                x.max_end = next_rel_seq

        # The receiver, assuming delivery.
        before = y.state
        row = _SKIP[before]
        for e in recv:
            if not row[e]:
                if e == _RECV_ACK_OF_FIN and acks_missed:
                    self._apply(y, e, False, conf=_INFC, reason="infer.fin_ack_not_captured")
                else:
                    self._apply(y, e, False)
                row = _SKIP[y.state]
        if y.state != before:
            covers = next_rel_seq if (syn or fin) and analysed and not rst else None
            y.pending = _Pending(before, recv, frame, covers, bool(rst), False)

    # ------------------------------------------------------------------
    # Assumptions taken back
    # ------------------------------------------------------------------

    def _check_pending(self, x: Endpoint, send: tuple[int, ...], syn: bool, fin: bool):
        """Revert the sender's last assumed receive if this segment contradicts it.

        Returns the pending receive to apply again afterwards (the segments crossed),
        or None.
        """
        p = x.pending
        if p is None:
            return None
        seg = self._seg
        acks_it = p.covers is not None and seg[3] and seg[2] and seg[5] >= p.covers
        # A first SYN, SYN-ACK or FIN from this side is new, not a resend.
        new_control = ((syn and not (x.sent_synack if seg[3] else x.sent_syn))
                       or (fin and x.fin_next is None))
        if new_control and p.covers is not None and not acks_it:
            # A first SYN or FIN that does not acknowledge the peer's SYN/FIN: sent
            # before that segment arrived (simultaneous open / close).
            self._revert(x, p, "revise.crossed")
            return p
        now, then = _NEXT[x.state], _NEXT[p.before]
        blocked = possible = False
        for e in send:
            if now[e] < 0:
                blocked = True
            if then[e] < 0:
                possible = False
                break
            possible = True
        if blocked and possible:
            # Not possible in the assumed state, possible before it: the segment that
            # changed the state had not arrived. A resend (SYN, SYN-ACK, FIN again) means
            # it never will; a first SYN-ACK or FIN, or anything after a RST, crossed it:
            # the peer's segment takes effect afterwards (once).
            crossed = (new_control or p.is_rst) and not p.reapplied
            self._revert(x, p, "revise.crossed" if crossed else "revise.not_delivered")
            return p if crossed else None
        if acks_it or p.covers is None:
            x.pending = None  # confirmed by its own segment
        return None

    def _revert(self, x: Endpoint, p: _Pending, reason: str) -> None:
        x.pending = None
        if x.state != p.before:
            self._set_state(x, p.before, reason, EXTRA_REASONS[reason], _INFC, "")

    def _reapply(self, x: Endpoint, p: _Pending) -> None:
        before = x.state
        for e in p.events:
            self._apply(x, e, False)
        if x.state != before:
            x.pending = _Pending(before, p.events, p.frame, p.covers, p.is_rst, True)

    # ------------------------------------------------------------------
    # One event through the table
    # ------------------------------------------------------------------

    def apply(self, side: str, event: Event | str, *, frame: int = 0, ts_ns: int = 0) -> bool:
        """Apply one endpoint-relative event to one side (for tests and tools).

        Returns True if the table defines it (the state may stay the same),
        False if it was recorded as an anomaly.
        """
        ep = self.client if side == "client" else self.server
        ev = Event[event.upper()] if isinstance(event, str) else Event(event)
        self._seg = (frame, ts_ns, False, 0, 0, 0, 0)
        self.changes = []
        self.anomaly_count = 0
        return self._apply(ep, int(ev), ev.name.startswith("SEND"))

    def _apply(self, ep: Endpoint, e: int, sending: bool, *, conf: str | None = None,
               reason: str | None = None) -> bool:
        st = ep.state
        new = _NEXT[st][e]
        if new < 0:
            self._anomaly(ep, e, anomaly_id(st, e), _table_anomaly_sentence(st, e))
            return False
        guard = _GUARD[st][e]
        if guard is not None:
            verdict = getattr(self, guard)(ep, new)
            if verdict is None:
                return True  # the guard recorded why, or decided nothing changes
            new, reason = verdict[0], verdict[1] or reason
        if new == st:
            return True
        if conf is None:
            conf = _INFC if _INF[st][e] else (_OBS if sending else _ASM)
        if reason is None:
            rid, text = REASONS[(st, e)]
        else:
            rid = reason
            text = EXTRA_REASONS.get(reason) or REASONS[(st, e)][1]
        self._set_state(ep, new, rid, text, conf, EVENT_NAMES[e])
        return True

    def _set_state(self, ep: Endpoint, new: int, reason: str, sentence: str, confidence: str,
                   event: str) -> None:
        """Every change of state goes through here."""
        old = ep.state
        ep.state = new
        self.changes.append((ep.index, old, new, confidence, reason))
        if self.keep:
            seg = self._seg
            self.transitions.append(Transition(seg[0], seg[1], ep.side, State(old), State(new),
                                               reason, sentence, confidence, event))

    def _anomaly(self, ep: Endpoint, e: int, aid: str, sentence: str) -> None:
        self.anomaly_count += 1
        if self.keep:
            seg = self._seg
            self.anomalies.append(StateAnomaly(seg[0], seg[1], ep.side, State(ep.state),
                                               EVENT_NAMES[e], aid, sentence))

    # ------------------------------------------------------------------
    # Guards: return (new state, reason id or None), or None for "no change"
    # ------------------------------------------------------------------

    def _guard_synack_acceptable(self, ep: Endpoint, new: int):
        # §3.10.7.3 first: "If SND.UNA < SEG.ACK =< SND.NXT, then the ACK is acceptable";
        # SND.NXT is past the SYN and any data on it (TFO).
        seg = self._seg
        if seg[2] and ep.sent_syn and not (1 <= seg[5] <= max(ep.max_end, 1)):
            self._anomaly(ep, _RECV_SYNACK, "synack_bad_ack", GUARD_ANOMALIES["synack_bad_ack"])
            return None
        return new, None

    def _guard_rst_in_syn_sent(self, ep: Endpoint, new: int):
        # §3.10.7.3 second: in SYN-SENT a RST counts only with an ACK of the SYN.
        seg = self._seg
        if seg[2] and ep.sent_syn and not (seg[3] and 1 <= seg[5] <= max(ep.max_end, 1)):
            self._anomaly(ep, _RECV_RST, "rst_not_acceptable",
                          GUARD_ANOMALIES["rst_not_acceptable"])
            return None
        return new, None

    def _guard_data_in_syn_received(self, ep: Endpoint, new: int):
        # RFC 7413 §4.2: a Fast Open server may send data in SYN-RECEIVED, before the
        # ACK of its SYN-ACK; without Fast Open, data proves the ACK arrived (§3.10.7.4).
        if self.data_on_syn:
            return None
        return new, None

    def _guard_reject(self, ep: Endpoint, new: int):
        # §3.10.7.1: a SYN to a port nobody listens on is answered by RST. If this side
        # never sent a SYN-ACK, its SYN-RECEIVED was only our assumption.
        if not ep.sent_synack and not ep.sent_any:
            return new, "reset.reject"
        return new, None

    def _guard_data_before_fin(self, ep: Endpoint, new: int):
        # §3.10.4: after CLOSE no new data is sent; bytes before the FIN may be resent.
        seg = self._seg
        if seg[2] and ep.fin_next is not None and seg[4] + seg[6] > ep.fin_next - 1:
            self._anomaly(ep, _SEND_DATA, "data_after_fin", GUARD_ANOMALIES["data_after_fin"])
        return None


# Event tuples by flag combination, in RFC 9293 §3.10.7.4 order (see Event).
_RST_SEND, _RST_RECV = (_SEND_RST,), (_RECV_RST,)
_SYN_SEND = [((_SEND_SYNACK if i & 2 else _SEND_SYN),) + ((_SEND_FIN,) if i & 1 else ())
             for i in range(4)]
_SYN_RECV = [((_RECV_SYNACK if i & 2 else _RECV_SYN),) + ((_RECV_FIN,) if i & 1 else ())
             for i in range(4)]
_SEND = [tuple(e for bit, e in ((4, _SEND_ACK), (2, _SEND_DATA), (1, _SEND_FIN)) if i & bit)
         for i in range(8)]
_RECV = [tuple(e for bit, e in ((8, _RECV_ACK), (4, _RECV_ACK_OF_FIN), (2, _RECV_DATA),
                                (1, _RECV_FIN)) if i & bit)
         for i in range(16)]

#: States from which a missed FIN can be inferred for the receiver of an ACK.
_CAN_FIN = frozenset({_ESTABLISHED, _CLOSE_WAIT, _SYN_RECEIVED})


def _table_anomaly_sentence(st: int, e: int) -> str:
    return (f"{EVENT_NAMES[e]} is not defined in {STATE_NAMES[st]} "
            f"(RFC 9293 §3.3.2 / §3.10.7): recorded, the segment is kept")


# ---------------------------------------------------------------------------
# Drawing the table
# ---------------------------------------------------------------------------

def _edges() -> list[tuple[State, State, list[str]]]:
    """State-changing edges, grouped by (from, to), events in Event order."""
    grouped: dict[tuple[State, State], list[str]] = {}
    for (st, ev), new in sorted(TRANSITIONS.items()):
        if new != st:
            label = EVENT_NAMES[ev] + ("*" if (st, ev) in INFERRED else "")
            grouped.setdefault((st, new), []).append(label)
    return [(a, b, evs) for (a, b), evs in sorted(grouped.items())]


def render_text() -> str:
    """The state diagram as text: every state-changing edge (``*`` = inferred)."""
    lines = []
    width = max(len(s.name) for s in State)
    for a, b, evs in _edges():
        lines.append(f"{a.name:<{width}} --[{', '.join(evs)}]--> {b.name}")
    lines.append("")
    lines.append("* inferred: the edge is a deduction (mid-stream start or a missed packet).")
    lines.append("Pairs not shown either change nothing or are anomalies (render_table()).")
    return "\n".join(lines)


def render_table() -> str:
    """Every (state, event) pair: the next state, ``.`` for no change, ``!`` for an anomaly."""
    abbrev = {e: EVENT_NAMES[e] for e in Event}
    cell_w = max(len(s.name) for s in State)
    head = "state".ljust(cell_w) + " | " + " | ".join(f"{i:>2}" for i in range(len(Event)))
    out = [head, "-" * len(head)]
    for st in State:
        cells = []
        for ev in Event:
            new = TRANSITIONS.get((st, ev))
            cells.append(" !" if new is None else " ." if new == st else f"{int(new):>2}")
        out.append(st.name.ljust(cell_w) + " | " + " | ".join(cells))
    out.append("")
    out.append("events: " + ", ".join(f"{int(e)} {abbrev[e]}" for e in Event))
    out.append("states: " + ", ".join(f"{int(s)} {s.name}" for s in State))
    return "\n".join(out)


def render_mermaid() -> str:
    """The state diagram as Mermaid ``stateDiagram-v2`` (``*`` = inferred edge)."""
    lines = ["stateDiagram-v2", "    [*] --> CLOSED", "    [*] --> LISTEN", "    [*] --> UNKNOWN"]
    for a, b, evs in _edges():
        lines.append(f"    {a.name} --> {b.name} : {', '.join(evs)}")
    lines.append("    TIME_WAIT --> [*] : 2 MSL (not shown by a capture)")
    return "\n".join(lines)
