"""The RFC 9293 endpoint states as a table: what each segment does to each endpoint's state.

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

The design is a hybrid of table and functions (STYLE.md, after h11 and smoltcp):

* `TABLE` has one `Edge` per defined ``(State, Event)`` pair: the next state, the
  reason (a stable id and a sentence), the RFC 9293 section it follows, how the
  change is known (its confidence) and, where the table alone does not decide,
  a guard. Events are relative to one endpoint (``send_fin``, ``recv_fin``,
  ...). Every pair without an edge is an anomaly: it is recorded
  (`StateAnomaly`), never raised, and the segment is never dropped. An edge
  whose next state is its own is a defined "nothing changes".
* A guard is a small function of the endpoint, the `Segment` and the
  connection; it may refuse the edge (recording an anomaly with its own id) or
  give a more precise reason (`Verdict`).
* machine.py applies the table to both endpoints of a connection, segment by
  segment (`ConnectionStates`); every change is recorded as a `Transition` with
  its frame, time, side, reason and confidence. lifecycle/ drives the machine
  from the engine's batches.

`render_text`, `render_table` and `render_mermaid` draw the table (docs/states.md
shows them). Sequence numbers are the engine's 64-bit relative numbers, so
plain comparisons are safe (no raw 32-bit ``<`` anywhere).
"""
from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .machine import ConnectionStates, Endpoint

__all__ = [
    "State", "Event", "Confidence", "Segment", "Verdict", "PASS", "Guard", "Edge", "TABLE",
    "TRANSITIONS", "EXTRA_REASONS", "GUARD_ANOMALIES", "anomaly_id", "table_anomaly_sentence",
    "Transition", "StateAnomaly", "render_text", "render_table", "render_mermaid",
    "STATE_NAMES", "EVENT_NAMES", "SYNCHRONIZED",
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

    @property
    def sending(self) -> bool:
        return self <= Event.SEND_RST


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

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10


class Segment(NamedTuple):
    """What the machine knows of one captured segment (the engine's facts).

    ``from_server``, ``analysed``, ``acks_unseen`` and ``role_guessed`` are read as
    truth values (a driver may pass 0 / 1)."""

    frame: int
    ts_ns: int
    from_server: bool
    flags: int              #: the TCP flag bits
    length: int             #: payload bytes
    rel_seq: int            #: the engine's 64-bit relative numbers ...
    rel_ack: int            #: ... (``rel_ack`` relative to the receiver's base)
    next_rel_seq: int
    #: False when the engine could not analyse the segment (``no_seglen``): only its
    #: flags count then
    analysed: bool = True
    #: whether the ACK goes beyond anything seen from the receiver (the engine's
    #: ``ack_lost_segment``); None: work it out from the segments fed to the machine
    acks_unseen: bool | None = None
    #: packets of the sender the capture missed just before this one, as its IPv4 IDs
    #: show (the engine's ``ip_id_gap``)
    unseen_before: int = 0
    #: the engine's roles are a guess so far (no SYN or SYN-ACK seen yet)
    role_guessed: bool = False
    #: what its options offer, read on a SYN: the options present (wire.record OPTION
    #: bits), the MSS and the window scale shift
    opt_present: int = 0
    mss: int = 0
    wscale: int = 0

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & _ACK)


class Verdict(NamedTuple):
    """What a guard decides about an edge."""

    change: bool = True        #: False: the edge is refused, nothing changes
    #: change: a more precise reason id than the edge's; refused: the anomaly id to
    #: record (None: refused without an anomaly)
    reason: str | None = None


#: The guard's "the edge applies as the table says".
PASS = Verdict()

#: A guard: (the endpoint, the segment, the connection) -> Verdict.
Guard = Callable[["Endpoint", Segment, "ConnectionStates"], Verdict]


# ---------------------------------------------------------------------------
# Guards, each with the section it follows
# ---------------------------------------------------------------------------

def synack_acceptable(ep: Endpoint, seg: Segment, conn: ConnectionStates) -> Verdict:
    """§3.10.7.3 first: "If SND.UNA < SEG.ACK =< SND.NXT, then the ACK is acceptable";
    SND.NXT is past the SYN and any data on it (TFO)."""
    if seg.analysed and ep.sent_syn and not 1 <= seg.rel_ack <= max(ep.max_end, 1):
        return Verdict(False, "synack_bad_ack")
    return PASS


def rst_acks_the_syn(ep: Endpoint, seg: Segment, conn: ConnectionStates) -> Verdict:
    """§3.10.7.3 second: in SYN-SENT a RST counts only with an ACK of the SYN."""
    if seg.analysed and ep.sent_syn and not (seg.has_ack
                                             and 1 <= seg.rel_ack <= max(ep.max_end, 1)):
        return Verdict(False, "rst_not_acceptable")
    return PASS


def data_proves_ack(ep: Endpoint, seg: Segment, conn: ConnectionStates) -> Verdict:
    """§3.10.7.4: data from SYN-RECEIVED proves the ACK of the SYN arrived -- except
    with Fast Open (RFC 7413 §4.2), where the server may send data before it."""
    return Verdict(False) if conn.data_on_syn else PASS


def reject(ep: Endpoint, seg: Segment, conn: ConnectionStates) -> Verdict:
    """§3.10.7.1: a SYN to a port nobody listens on is answered by RST. If this side
    never sent a SYN-ACK (nor anything), its SYN-RECEIVED was only our assumption."""
    if not ep.sent_synack and not ep.sent_any:
        return Verdict(True, "reset.reject")
    return PASS


def new_connection(ep: Endpoint, seg: Segment, conn: ConnectionStates) -> Verdict:
    """§3.10.7.4 fourth, RFC 6191: a SYN may reuse a 4-tuple still in TIME-WAIT for a new
    connection (Linux accepts one at the server, and `tcp_tw_reuse` lets a client send one).
    Only a new connection's first SYN does (the tracker starts it in TIME-WAIT); on the same
    connection a SYN in TIME-WAIT is answered by an ACK, and sending one is the table's
    anomaly (``send_syn_in_time_wait``)."""
    if ep.sent_any:
        sending = bool(seg.from_server) == (ep.index == 1)
        return Verdict(False, anomaly_id(S.TIME_WAIT, E.SEND_SYN) if sending else None)
    return PASS


def data_before_fin(ep: Endpoint, seg: Segment, conn: ConnectionStates) -> Verdict:
    """§3.10.4: after CLOSE no new data is sent; bytes before the FIN may be resent."""
    if seg.analysed and ep.fin_next is not None and seg.rel_seq + seg.length > ep.fin_next - 1:
        return Verdict(False, "data_after_fin")
    return PASS


#: Anomaly ids set by guards (the table's own anomalies are ``<event>_in_<state>``).
GUARD_ANOMALIES: dict[str, str] = {
    "synack_bad_ack": "a SYN-ACK whose ACK does not acknowledge the SYN (§3.10.7.3 first: "
                      "not acceptable)",
    "rst_not_acceptable": "a RST in SYN-SENT that does not acknowledge the SYN is dropped "
    "(§3.10.7.3 second)",
    "data_after_fin": "new data beyond the sender's own FIN (§3.10.4: no SEND after CLOSE)",
}


# ---------------------------------------------------------------------------
# The table: one edge per defined (state, event) pair. Sections are RFC 9293's.
# ---------------------------------------------------------------------------

class Edge(NamedTuple):
    """One row of the table: (state, event) -> next, and why."""

    state: State
    event: Event
    next: State               #: the same state: a defined "nothing changes"
    rfc: str                  #: the RFC 9293 section it follows, e.g. "§3.10.7.3"
    reason: str | None        #: stable id of a change (None when nothing changes)
    sentence: str             #: the reason in words (a change), or what the pair means
    confidence: str           #: how a change on this edge is known (`Confidence`)
    guard: Guard | None = None

    @property
    def changes(self) -> bool:
        return self.next != self.state


def _edge(state: State, event: Event, new: State, rfc: str, reason: str | None,
          sentence: str, *, inferred: bool = False, guard: Guard | None = None) -> Edge:
    conf = (Confidence.INFERRED if inferred
            else Confidence.OBSERVED if event.sending else Confidence.ASSUMED)
    return Edge(state, event, new, rfc, reason, sentence, conf, guard)


def _same(state: State, event: Event, rfc: str, note: str, *,
          guard: Guard | None = None) -> Edge:
    """A defined pair that changes nothing."""
    return _edge(state, event, state, rfc, None, note, guard=guard)


#: Segments that change nothing in any synchronized state.
_SAME_IN_SYNC = (
    (E.SEND_ACK_OF_SYN, "§3.10.7.4", "every ACK after the handshake covers the peer's SYN"),
    (E.RECV_SYN, "§3.10.7.4", "a SYN in a synchronized state is answered by an ACK (fourth)"),
    (E.RECV_SYNACK, "§3.10.7.4", "a SYN-ACK again: answered by an ACK (fourth)"),
    (E.RECV_ACK_OF_SYN, "§3.10.7.4", "an ACK of what was already acknowledged (fifth)"),
    (E.RECV_DATA, "§3.10.7.4", "the text is delivered (seventh)"),
)
#: States that refuse new data beyond their own FIN.
_AFTER_CLOSE = (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT)

_RESET_SENT = "it sent a RST: it aborts the connection"
_RESET_RECV = "it receives a RST: the connection is reset"

TABLE: tuple[Edge, ...] = (
    # -- observer-only: no evidence yet (capture began mid-connection) --------
    _edge(S.UNKNOWN, E.SEND_SYN, S.SYN_SENT, "§3.5", "open.active",
          "it sent a SYN: an active open (RFC 9293 §3.5)"),
    _edge(S.UNKNOWN, E.SEND_SYNACK, S.SYN_RECEIVED, "§3.10.7.2", "infer.syn_not_captured",
          "it sent a SYN-ACK, so it had received a SYN the capture does not show (§3.10.7.2)",
          inferred=True),
    _edge(S.UNKNOWN, E.SEND_ACK_OF_SYN, S.ESTABLISHED, "§3.3.2", "infer.midstream",
          "the capture begins mid-connection; only a synchronized TCP acknowledges (§3.3.2)",
          inferred=True),
    _edge(S.UNKNOWN, E.SEND_DATA, S.ESTABLISHED, "§3.3.2", "infer.midstream",
          "the capture begins mid-connection; it sends data (§3.3.2)", inferred=True),
    _edge(S.UNKNOWN, E.SEND_FIN, S.FIN_WAIT_1, "§3.6", "infer.midstream_fin",
          "its first segment in the capture is a FIN; taken as a close from ESTABLISHED (§3.6)",
          inferred=True),
    _edge(S.UNKNOWN, E.SEND_RST, S.CLOSED, "§3.5.2", "reset.sent", f"{_RESET_SENT} (§3.5.2)"),
    _edge(S.UNKNOWN, E.RECV_SYN, S.SYN_RECEIVED, "§3.10.7.2", "open.syn_received",
          "it receives a SYN: it answers SYN-ACK and waits for the ACK (§3.10.7.2)"),
    _edge(S.UNKNOWN, E.RECV_SYNACK, S.ESTABLISHED, "§3.10.7.3", "infer.syn_not_captured",
          "it receives a SYN-ACK for a SYN the capture does not show (§3.10.7.3)",
          inferred=True),
    _edge(S.UNKNOWN, E.RECV_ACK_OF_SYN, S.ESTABLISHED, "§3.3.2", "infer.midstream",
          "the capture begins mid-connection; it is being acknowledged (§3.3.2)",
          inferred=True),
    _same(S.UNKNOWN, E.RECV_ACK_OF_FIN, "§3.3.2", "not enough to say which close"),
    _edge(S.UNKNOWN, E.RECV_DATA, S.ESTABLISHED, "§3.3.2", "infer.midstream",
          "the capture begins mid-connection; it receives data (§3.3.2)", inferred=True),
    _edge(S.UNKNOWN, E.RECV_FIN, S.CLOSE_WAIT, "§3.10.7.4", "infer.midstream_fin",
          "the capture begins mid-connection; it receives a FIN (§3.10.7.4)", inferred=True),
    _edge(S.UNKNOWN, E.RECV_RST, S.CLOSED, "§3.5.3", "reset.received",
          f"{_RESET_RECV} (§3.5.3)"),
    # -- CLOSED: no connection; a non-RST segment is answered by RST -----------
    _edge(S.CLOSED, E.SEND_SYN, S.SYN_SENT, "§3.5", "open.active",
          "it sent a SYN: an active open (§3.5)"),
    _same(S.CLOSED, E.SEND_RST, "§3.10.7.1", "the RST a closed port answers with"),
    *(_same(S.CLOSED, e, "§3.10.7.1", "answered with RST")
      for e in (E.RECV_SYN, E.RECV_SYNACK, E.RECV_ACK_OF_SYN, E.RECV_ACK_OF_FIN, E.RECV_DATA,
                E.RECV_FIN)),
    _same(S.CLOSED, E.RECV_RST, "§3.10.7.1", "an incoming RST is discarded"),
    # -- LISTEN ----------------------------------------------------------------
    _edge(S.LISTEN, E.SEND_SYN, S.SYN_SENT, "§3.10.2", "open.active_from_listen",
          "it sent a SYN of its own before the peer's SYN reached it (§3.10.2; simultaneous "
          "open, §3.5)"),
    _edge(S.LISTEN, E.SEND_SYNACK, S.SYN_RECEIVED, "§3.10.7.2", "infer.syn_not_captured",
          "it sent a SYN-ACK, so it had received a SYN the capture does not show (§3.10.7.2)",
          inferred=True),
    _same(S.LISTEN, E.SEND_RST, "§3.10.7.2", "a RST to a stray ACK; still listening"),
    _edge(S.LISTEN, E.RECV_SYN, S.SYN_RECEIVED, "§3.10.7.2", "open.syn_received",
          "it receives a SYN while listening: it answers SYN-ACK and waits for the ACK "
          "(§3.10.7.2)"),
    _same(S.LISTEN, E.RECV_RST, "§3.10.7.2", "an incoming RST is ignored (first)"),
    # -- SYN-SENT --------------------------------------------------------------
    _same(S.SYN_SENT, E.SEND_SYN, "§3.8.1", "the SYN sent again"),
    _edge(S.SYN_SENT, E.SEND_SYNACK, S.SYN_RECEIVED, "§3.10.7.3", "infer.peer_syn_not_captured",
          "it sent a SYN-ACK from SYN-SENT: it had received the peer's SYN (simultaneous open), "
          "which the capture does not show (§3.10.7.3)", inferred=True),
    _edge(S.SYN_SENT, E.SEND_ACK_OF_SYN, S.ESTABLISHED, "§3.10.7.3", "infer.synack_not_captured",
          "it acknowledges the peer's SYN, so it had received a SYN-ACK the capture does not "
          "show (§3.10.7.3)", inferred=True),
    _edge(S.SYN_SENT, E.SEND_RST, S.CLOSED, "§3.5.2", "reset.sent",
          "it sent a RST: it gives up the attempt (§3.5.2)"),
    _edge(S.SYN_SENT, E.RECV_SYN, S.SYN_RECEIVED, "§3.10.7.3", "open.simultaneous",
          "it receives the peer's SYN while its own is unanswered: simultaneous open "
          "(§3.10.7.3)"),
    _edge(S.SYN_SENT, E.RECV_SYNACK, S.ESTABLISHED, "§3.10.7.3", "open.synack_received",
          "it receives a SYN-ACK acknowledging its SYN: it ACKs and is established (§3.10.7.3)",
          guard=synack_acceptable),
    _edge(S.SYN_SENT, E.RECV_RST, S.CLOSED, "§3.10.7.3", "reset.refused",
          "it receives a RST acknowledging its SYN: connection refused (§3.10.7.3)",
          guard=rst_acks_the_syn),
    # -- SYN-RECEIVED ----------------------------------------------------------
    _same(S.SYN_RECEIVED, E.SEND_SYNACK, "§3.10.7.2", "the SYN-ACK, or the SYN-ACK sent again"),
    _same(S.SYN_RECEIVED, E.SEND_ACK_OF_SYN, "§3.10.7.4", "an ACK before its SYN is "
          "acknowledged"),
    _edge(S.SYN_RECEIVED, E.SEND_DATA, S.ESTABLISHED, "§3.10.7.4", "infer.ack_not_captured",
          "it sends data, so the ACK of its SYN had arrived, though the capture does not show "
          "it (§3.10.7.4)", inferred=True, guard=data_proves_ack),
    _edge(S.SYN_RECEIVED, E.SEND_FIN, S.FIN_WAIT_1, "§3.10.4", "close.active",
          "it sent a FIN before the handshake ended: CLOSE in SYN-RECEIVED (§3.10.4)"),
    _edge(S.SYN_RECEIVED, E.SEND_RST, S.CLOSED, "§3.5.2", "reset.sent",
          f"{_RESET_SENT} (§3.5.2)", guard=reject),
    _same(S.SYN_RECEIVED, E.RECV_SYN, "§3.10.7.4", "a SYN sent again: the SYN-ACK again"),
    _edge(S.SYN_RECEIVED, E.RECV_SYNACK, S.ESTABLISHED, "§3.10.7.4", "open.simultaneous_synack",
          "it receives a SYN-ACK acknowledging its SYN: simultaneous open completes "
          "(§3.10.7.4)", guard=synack_acceptable),
    _edge(S.SYN_RECEIVED, E.RECV_ACK_OF_SYN, S.ESTABLISHED, "§3.10.7.4", "open.ack_of_syn",
          "it receives the ACK of its SYN: the handshake is complete (§3.10.7.4)"),
    _same(S.SYN_RECEIVED, E.RECV_DATA, "§3.10.7.4", "data on the SYN (Fast Open, RFC 7413)"),
    _edge(S.SYN_RECEIVED, E.RECV_FIN, S.CLOSE_WAIT, "§3.10.7.4", "close.passive",
          "it receives a FIN: the peer will send no more (§3.10.7.4)"),
    _edge(S.SYN_RECEIVED, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          "it receives a RST: the attempt is over (§3.10.7.4; a listening socket stays, but it "
          "is not this connection)"),
    # -- ESTABLISHED -----------------------------------------------------------
    _same(S.ESTABLISHED, E.SEND_DATA, "§3.10.2", "data"),
    _edge(S.ESTABLISHED, E.SEND_FIN, S.FIN_WAIT_1, "§3.6", "close.active",
          "it sent a FIN: it closes its direction first (§3.6, §3.10.4)"),
    _edge(S.ESTABLISHED, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          f"{_RESET_SENT} (§3.10.5)"),
    _edge(S.ESTABLISHED, E.RECV_FIN, S.CLOSE_WAIT, "§3.10.7.4", "close.passive",
          "it receives a FIN: the peer will send no more; it waits for its application to "
          "close (§3.10.7.4)"),
    _edge(S.ESTABLISHED, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          f"{_RESET_RECV} (§3.10.7.4)"),
    # -- FIN-WAIT-1 ------------------------------------------------------------
    _same(S.FIN_WAIT_1, E.SEND_FIN, "§3.8.1", "the FIN sent again"),
    _edge(S.FIN_WAIT_1, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          "it sent a RST: it aborts the close (§3.10.5)"),
    _edge(S.FIN_WAIT_1, E.RECV_ACK_OF_FIN, S.FIN_WAIT_2, "§3.10.7.4", "close.fin_acked",
          "its FIN is acknowledged; it waits for the peer's FIN (§3.10.7.4)"),
    _edge(S.FIN_WAIT_1, E.RECV_FIN, S.CLOSING, "§3.10.7.4", "close.simultaneous",
          "it receives the peer's FIN before the ACK of its own: simultaneous close "
          "(§3.10.7.4, §3.6)"),
    _edge(S.FIN_WAIT_1, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          f"{_RESET_RECV} (§3.10.7.4)"),
    # -- FIN-WAIT-2 ------------------------------------------------------------
    _edge(S.FIN_WAIT_2, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          f"{_RESET_SENT} (§3.10.5)"),
    _same(S.FIN_WAIT_2, E.RECV_ACK_OF_FIN, "§3.10.7.4", "its FIN acknowledged again"),
    _edge(S.FIN_WAIT_2, E.RECV_FIN, S.TIME_WAIT, "§3.10.7.4", "close.time_wait",
          "it receives the peer's FIN after its own was acknowledged: it ACKs and waits 2 MSL "
          "in TIME-WAIT (§3.10.7.4)"),
    _edge(S.FIN_WAIT_2, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          f"{_RESET_RECV} (§3.10.7.4)"),
    # -- CLOSE-WAIT ------------------------------------------------------------
    _same(S.CLOSE_WAIT, E.SEND_DATA, "§3.6", "a half-close: it may still send"),
    _edge(S.CLOSE_WAIT, E.SEND_FIN, S.LAST_ACK, "§3.10.4", "close.passive_fin",
          "it sent its FIN after the peer's: it waits for the last ACK (§3.10.4)"),
    _edge(S.CLOSE_WAIT, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          f"{_RESET_SENT} (§3.10.5)"),
    _same(S.CLOSE_WAIT, E.RECV_FIN, "§3.10.7.4", "the peer's FIN again"),
    _edge(S.CLOSE_WAIT, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          f"{_RESET_RECV} (§3.10.7.4)"),
    # -- CLOSING ---------------------------------------------------------------
    _same(S.CLOSING, E.SEND_FIN, "§3.8.1", "the FIN sent again"),
    _edge(S.CLOSING, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          "it sent a RST: it aborts the close (§3.10.5)"),
    _edge(S.CLOSING, E.RECV_ACK_OF_FIN, S.TIME_WAIT, "§3.10.7.4", "close.closing_acked",
          "its FIN is acknowledged after a simultaneous close: TIME-WAIT (§3.10.7.4)"),
    _same(S.CLOSING, E.RECV_FIN, "§3.10.7.4", "the peer's FIN again"),
    _edge(S.CLOSING, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          "it receives a RST (§3.10.7.4)"),
    # -- LAST-ACK --------------------------------------------------------------
    _same(S.LAST_ACK, E.SEND_FIN, "§3.8.1", "the FIN sent again"),
    _edge(S.LAST_ACK, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          "it sent a RST instead of waiting for the last ACK (§3.10.5)"),
    _edge(S.LAST_ACK, E.RECV_ACK_OF_FIN, S.CLOSED, "§3.10.7.4", "close.last_ack",
          "the last ACK arrives: the connection is closed (§3.10.7.4)"),
    _same(S.LAST_ACK, E.RECV_FIN, "§3.10.7.4", "the peer's FIN again"),
    _edge(S.LAST_ACK, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          "it receives a RST (§3.10.7.4)"),
    # -- TIME-WAIT -------------------------------------------------------------
    _edge(S.TIME_WAIT, E.SEND_SYN, S.SYN_SENT, "§3.10.7.4", "open.time_wait_reuse",
          "it sent a SYN for a new connection on the 4-tuple it held in TIME-WAIT (§3.10.7.4, "
          "RFC 6191; Linux tcp_tw_reuse)", guard=new_connection),
    _edge(S.TIME_WAIT, E.RECV_SYN, S.SYN_RECEIVED, "§3.10.7.4", "open.time_wait_reuse",
          "it receives a new connection's SYN on the 4-tuple it holds in TIME-WAIT and accepts it "
          "(§3.10.7.4 fourth, RFC 6191)", guard=new_connection),
    _edge(S.TIME_WAIT, E.SEND_RST, S.CLOSED, "§3.10.5", "reset.sent",
          "it sent a RST from TIME-WAIT (§3.10.5)"),
    _same(S.TIME_WAIT, E.RECV_ACK_OF_FIN, "§3.10.7.4", "its FIN acknowledged again"),
    _same(S.TIME_WAIT, E.RECV_FIN, "§3.10.7.4", "a FIN sent again: it ACKs it again and "
          "restarts the 2 MSL timeout"),
    _edge(S.TIME_WAIT, E.RECV_RST, S.CLOSED, "§3.10.7.4", "reset.received",
          "it receives a RST in TIME-WAIT and closes at once (§3.10.7.4; RFC 1337 describes the "
          "hazard)"),
    # -- in every synchronized state -------------------------------------------
    *(_same(s, e, rfc, note) for s in sorted(SYNCHRONIZED) for e, rfc, note in _SAME_IN_SYNC
      if (s, e) != (S.TIME_WAIT, E.RECV_SYN)),
    *(_same(s, E.SEND_DATA, "§3.10.4", "bytes before its FIN (sent again)", guard=data_before_fin)
      for s in _AFTER_CLOSE),
)

#: The table as a mapping (state, event) -> next state, for tests and drawings.
TRANSITIONS: dict[tuple[State, Event], State] = {(r.state, r.event): r.next for r in TABLE}

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
    "revise.syn_resent": "the peer sent its SYN again with no answer in between: the earlier "
                         "copy did not arrive (had it arrived, a SYN-ACK would have answered it, "
                         "§3.10.7.2)",
    "revise.rejected": "it answered the SYN with a RST: nothing listened on that port "
                       "(§3.10.7.1), so it was CLOSED throughout, never LISTEN or SYN-RECEIVED",
    "revise.no_tcb": "it answered the SYN-ACK with a RST without ACK, the answer of a host that "
                     "has no connection (§3.10.7.1): the SYN-ACK did not make it ESTABLISHED",
    "revise.unanswered": "nothing in the rest of the capture answers the segment: taken as not "
                         "arrived (a SYN never answered by a SYN-ACK, a SYN-ACK never "
                         "acknowledged)",
}


def anomaly_id(state: State | int, event: Event | int) -> str:
    """The id of the anomaly a (state, event) pair outside the table records."""
    return f"{EVENT_NAMES[event]}_in_{STATE_NAMES[state].lower()}"


def table_anomaly_sentence(st: int, e: int) -> str:
    """What the anomaly of a (state, event) pair outside the table says."""
    return (f"{EVENT_NAMES[e]} is not defined in {STATE_NAMES[st]} "
            f"(RFC 9293 §3.3.2 / §3.10.7): recorded, the segment is kept")


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
    #: taken back by later evidence: what a live view showed at the time, not part of the
    #: side's path (an assumption withdrawn, or the correction that withdrew it)
    revised: bool = False


class StateAnomaly(NamedTuple):
    """A segment whose meaning is not defined in its endpoint's state (recorded, never raised)."""

    frame: int
    ts_ns: int
    side: str
    state: State
    event: str
    anomaly: str        #: stable id: "<event>_in_<state>" or a guard's id
    sentence: str


# ---------------------------------------------------------------------------
# Drawing the table
# ---------------------------------------------------------------------------

def _edges() -> list[tuple[State, State, list[str]]]:
    """State-changing edges, grouped by (from, to), events in Event order."""
    grouped: dict[tuple[State, State], list[str]] = {}
    for r in sorted(TABLE, key=lambda r: (r.state, r.event)):
        if r.changes:
            label = EVENT_NAMES[r.event] + ("*" if r.confidence == Confidence.INFERRED else "")
            grouped.setdefault((r.state, r.next), []).append(label)
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
    out.append("events: " + ", ".join(f"{int(e)} {EVENT_NAMES[e]}" for e in Event))
    out.append("states: " + ", ".join(f"{int(s)} {s.name}" for s in State))
    return "\n".join(out)


def render_mermaid() -> str:
    """The state diagram as Mermaid ``stateDiagram-v2`` (``*`` = inferred edge)."""
    lines = ["stateDiagram-v2", "    [*] --> CLOSED", "    [*] --> LISTEN", "    [*] --> UNKNOWN"]
    for a, b, evs in _edges():
        lines.append(f"    {a.name} --> {b.name} : {', '.join(evs)}")
    lines.append("    TIME_WAIT --> [*] : 2 MSL (not shown by a capture)")
    return "\n".join(lines)
