"""The state machine: both endpoints of one connection, driven segment by segment through
the table of states.py.

`ConnectionStates.on_segment` takes one `Segment` and applies its sender's events
(observed), then its receiver's (assumed), each through the table (`TABLE`: the
next state, a guard, the reason, the confidence). It takes an assumed receive
back when the receiver's own later segment contradicts it (`Pending`). Every
change goes through ``_set_state`` and is recorded as a `Transition`; every pair
outside the table is recorded as a `StateAnomaly`. Sans-IO: `lifecycle` drives it.
"""
from __future__ import annotations

from .states import (
    EVENT_NAMES, EXTRA_REASONS, GUARD_ANOMALIES, SYNCHRONIZED, TABLE, Confidence, Edge, Event,
    Segment, State, StateAnomaly, Transition, anomaly_id, table_anomaly_sentence,
)

__all__ = ["Pending", "Endpoint", "ConnectionStates"]

S = State
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10

# The table by [state][event] (lists index faster than dicts), for the per-segment path.
_EDGE: list[list[Edge | None]] = [[None] * len(Event) for _ in State]
for _r in TABLE:
    _EDGE[_r.state][_r.event] = _r
del _r
# The same, column by column, for the per-segment path: the next state (-1: anomaly), the
# guard, the confidence of a change; and where an event changes nothing and has no guard
# (the per-segment path skips it).
_NEXT = [[-1 if r is None else int(r.next) for r in row] for row in _EDGE]
_GUARD = [[None if r is None else r.guard for r in row] for row in _EDGE]
_CONF = [[None if r is None else r.confidence for r in row] for row in _EDGE]
_QUIET = [[r is not None and not r.changes and r.guard is None for r in row] for row in _EDGE]

(_SEND_SYN, _SEND_SYNACK, _SEND_ACK, _SEND_DATA, _SEND_FIN, _SEND_RST, _RECV_SYN, _RECV_SYNACK,
 _RECV_ACK, _RECV_ACK_OF_FIN, _RECV_DATA, _RECV_FIN, _RECV_RST) = range(13)
_INFC = Confidence.INFERRED

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
_CAN_FIN = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.SYN_RECEIVED})


class Pending:
    """An assumed receive not yet confirmed by its receiver's own segments."""

    __slots__ = ("before", "events", "frame", "covers", "is_rst", "reapplied", "tstart")

    def __init__(self, before: int, events: tuple[int, ...], frame: int, covers: int | None,
                 is_rst: bool, reapplied: bool, tstart: int) -> None:
        self.before = before      # the state before the segment's receive events
        self.events = events      # those events, to apply again if the segment was in flight
        self.frame = frame
        self.covers = covers      # the ACK value that acknowledges it (a SYN or FIN), else None
        self.is_rst = is_rst
        self.reapplied = reapplied
        self.tstart = tstart      # its first transition's index in `transitions` (when kept)

    def settled_by(self, acks: bool, rel_ack: int) -> bool:
        """Whether a segment of the receiver that does not contradict the assumption
        confirms it: any segment after an ACK or data received; after a SYN or FIN, one
        that acknowledges it (`acks`: it carries an ACK the engine analysed, of `rel_ack`)."""
        return self.covers is None or bool(acks and rel_ack >= self.covers)


class Endpoint:
    """One side of a connection: its state and what the capture showed it send."""

    __slots__ = ("side", "index", "state", "sent_syn", "sent_synack", "fin_next", "max_end",
                 "pending", "sent_any")

    def __init__(self, side: str, index: int, state: int = State.UNKNOWN) -> None:
        self.side = side          # "client" / "server"
        self.index = index        # 0 / 1
        self.state = state
        self.sent_syn = False     # a SYN or SYN-ACK (its ISN is known)
        self.sent_synack = False
        self.fin_next: int | None = None  # relative ACK value that covers its FIN
        self.max_end = -1         # highest relative sequence number it has sent up to (exclusive)
        self.pending: Pending | None = None  # its assumed receive, until its segments confirm it
        self.sent_any = False

    def __repr__(self) -> str:
        return f"Endpoint({self.side}, {State(self.state).name})"


class ConnectionStates:
    """Both endpoints of one connection, driven segment by segment (sans-IO).

    ``on_segment`` takes one `Segment`; after it, ``changes`` lists this
    segment's changes as (side index, old, new, confidence, reason id) and
    ``anomaly_count`` the anomalies it recorded. ``transitions`` and
    ``anomalies`` keep everything, unless ``keep=False``.
    """

    __slots__ = ("client", "server", "keep", "transitions", "anomalies", "changes",
                 "anomaly_count", "data_on_syn", "corrections", "initial", "_seg")

    def __init__(self, client_state: int = State.UNKNOWN, server_state: int = State.UNKNOWN, *,
                 keep: bool = True) -> None:
        self.client = Endpoint("client", 0, int(client_state))
        self.server = Endpoint("server", 1, int(server_state))
        self.keep = keep
        self.transitions: list[Transition] = []
        self.anomalies: list[StateAnomaly] = []
        self.changes: list[tuple[int, int, int, str, str]] = []
        self.anomaly_count = 0
        self.data_on_syn = False
        #: earlier rows whose states later evidence corrects: (side index, first frame, frame
        #: it ends before, the state those rows had); kept whether transitions are or not
        self.corrections: list[tuple[int, int, int, int]] = []
        #: each side's state before the first segment, as the whole capture shows it
        self.initial = [int(client_state), int(server_state)]
        self._seg = _NO_SEGMENT   # the segment being applied

    @classmethod
    def for_first_segment(cls, tcp_flags: int, *, keep: bool = True) -> ConnectionStates:
        """Initial states from a connection's first captured segment.

        A pure SYN opens it: the client was CLOSED and the server is assumed to be
        LISTENing. Anything else means the capture began mid-connection: UNKNOWN.
        """
        if tcp_flags & (_SYN | _ACK | _RST) == _SYN:
            return cls(State.CLOSED, State.LISTEN, keep=keep)
        return cls(keep=keep)

    @property
    def states(self) -> tuple[State, State]:
        return State(self.client.state), State(self.server.state)

    def swap_roles(self) -> None:
        """The engine found the roles were the other way round (a handshake seen late)."""
        self.client, self.server = self.server, self.client
        self.client.side, self.client.index = "client", 0
        self.server.side, self.server.index = "server", 1
        self.initial.reverse()
        # `corrections` keep their sides: they correct rows given with the roles of their time

    # ------------------------------------------------------------------
    # The segment
    # ------------------------------------------------------------------

    def on_segment(self, seg: Segment) -> None:
        """Apply one segment: its sender's events (observed), then its receiver's (assumed).

        A FIN after packets of its sender the capture missed (``unseen_before``), the
        first segment to acknowledge the receiver's FIN, that starts where the sender's
        data ended (so what was missed carried no data): the first ACK of the
        receiver's FIN was one of the missed packets, not merged with this FIN; the
        receiver's change is inferred (``infer.fin_ack_not_captured``), a four-packet
        close.
        """
        self.changes = []
        self.anomaly_count = 0
        self._seg = seg
        (frame, _ts, from_server, fl, length, rel_seq, rel_ack, nxt, analysed, unseen,
         unseen_before, _guessed, _opts, _mss, _wscale) = seg
        has_ack, rst, syn, fin = fl & _ACK, fl & _RST, fl & _SYN, fl & _FIN
        if from_server:
            x, y = self.server, self.client
        else:
            x, y = self.client, self.server

        # A FIN the capture missed: the ACK covers one sequence number past the receiver's data.
        if ((unseen is None or unseen) and has_ack and analysed and not syn and not rst
                and y.fin_next is None and y.max_end >= 0 and rel_ack == y.max_end + 1
                and y.state in _CAN_FIN):
            y.fin_next = rel_ack
            self._apply(y, _SEND_FIN, conf=_INFC, reason="infer.fin_not_captured")
            self._apply(x, _RECV_FIN, conf=_INFC, reason="infer.fin_not_captured")

        # The events (RFC 9293 §3.10.7.4 order), from precomputed tuples.
        if rst:
            send, recv = _RST_SEND, _RST_RECV
        elif syn:
            send = _SYN_SEND[(2 if has_ack else 0) | (1 if fin else 0)]
            recv = _SYN_RECV[(2 if has_ack else 0) | (1 if fin else 0)]
            if length and not has_ack:
                self.data_on_syn = True
        else:
            send = _SEND[(4 if has_ack else 0) | (2 if length else 0) | (1 if fin else 0)]
            acks_fin = has_ack and analysed and y.fin_next is not None and rel_ack >= y.fin_next
            acks_syn = has_ack and (not analysed or not y.sent_syn or rel_ack >= 1)
            recv = _RECV[(8 if acks_syn else 0) | (4 if acks_fin else 0)
                         | (2 if length else 0) | (1 if fin else 0)]

        # Hindsight from this segment on an assumption not yet confirmed.
        p = y.pending
        if p is not None and syn and not has_ack and x.sent_syn and _RECV_SYN in p.events:
            # a SYN sent again while the peer has not answered the last copy: it never arrived
            self._revert(y, p, "revise.syn_resent")
        p = x.pending
        if p is not None and rst:
            if not x.sent_any and _RECV_SYN in p.events:
                # a RST is the first answer to a SYN: nothing listened, CLOSED throughout
                self._revert(x, p, "revise.rejected")
                self._reinitialise(x, S.CLOSED, "revise.rejected")
            elif not has_ack and _RECV_SYNACK in p.events and x.state == S.ESTABLISHED:
                # a bare RST answers the SYN-ACK: no connection took it (§3.10.7.1)
                self._revert(x, p, "revise.no_tcb")

        # The sender: a contradiction with an assumed receive comes first.
        reapply = (self._check_pending(x, send, syn, fin, has_ack, analysed, rel_ack)
                   if x.pending is not None else None)
        quiet = _QUIET[x.state]
        for e in send:
            if not quiet[e]:
                self._apply(x, e)
                quiet = _QUIET[x.state]
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
                x.fin_next = nxt
            if nxt > x.max_end:
                x.max_end = nxt

        # The receiver, assuming delivery.
        before = y.state
        tstart = len(self.transitions)
        quiet = _QUIET[before]
        for e in recv:
            if not quiet[e]:
                if e == _RECV_ACK_OF_FIN and acks_missed:
                    self._apply(y, e, conf=_INFC, reason="infer.fin_ack_not_captured")
                else:
                    self._apply(y, e)
                quiet = _QUIET[y.state]
        if y.state != before:
            covers = nxt if (syn or fin) and analysed and not rst else None
            y.pending = Pending(before, recv, frame, covers, bool(rst), False, tstart)
        self._seg = _NO_SEGMENT   # a connection keeps no segment between segments

    # ------------------------------------------------------------------
    # Assumptions taken back
    # ------------------------------------------------------------------

    def _check_pending(self, x: Endpoint, send: tuple[int, ...], syn: int, fin: int,
                       has_ack: int, analysed: int, rel_ack: int) -> Pending | None:
        """Revert the sender's last assumed receive if this segment contradicts it.

        Returns the pending receive to apply again afterwards (the segments crossed),
        or None. A segment that does not contradict it may confirm it
        (`Pending.settled_by`).
        """
        p = x.pending
        if p is None:
            return None
        covers = p.covers
        acks = has_ack and analysed
        acks_it = covers is not None and acks and rel_ack >= covers
        # A first SYN, SYN-ACK or FIN from this side is new, not a resend.
        new_control = ((syn and not (x.sent_synack if has_ack else x.sent_syn))
                       or (fin and x.fin_next is None))
        if new_control and covers is not None and not acks_it:
            # A first SYN or FIN that does not acknowledge the peer's SYN/FIN: sent
            # before that segment arrived (simultaneous open / close).
            self._revert(x, p, "revise.crossed")
            return p
        now, then = _EDGE[x.state], _EDGE[p.before]
        blocked = possible = False
        for e in send:
            if now[e] is None:
                blocked = True
            if then[e] is None:
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
        if p.settled_by(acks, rel_ack):
            x.pending = None  # confirmed by its own segment
        return None

    def _revert(self, x: Endpoint, p: Pending, reason: str) -> None:
        """Take an assumed receive back: its transitions are revised (kept, marked, off the
        side's path), and the rows since its segment had the state before it."""
        x.pending = None
        if x.state != p.before:
            self._withdraw(x.side, p.tstart)
            self._set_state(x, p.before, reason, EXTRA_REASONS[reason], _INFC, "", True)
            self.corrections.append((x.index, p.frame, self._seg.frame, p.before))

    def _withdraw(self, side: str, start: int) -> None:
        """Mark the side's transitions from index `start` on as revised."""
        tr = self.transitions
        for i in range(start, len(tr)):
            if tr[i].side == side and not tr[i].revised:
                tr[i] = tr[i]._replace(revised=True)

    def _reinitialise(self, x: Endpoint, state: int, reason: str) -> None:
        """The side was in `state` from the start (every row so far, its initial state)."""
        self._withdraw(x.side, 0)
        if x.state != state:
            self._set_state(x, state, reason, EXTRA_REASONS[reason], _INFC, "", True)
        self.initial[x.index] = state
        self.corrections.append((x.index, 0, self._seg.frame, state))

    def _reapply(self, x: Endpoint, p: Pending) -> None:
        before = x.state
        tstart = len(self.transitions)
        for e in p.events:
            self._apply(x, e)
        if x.state != before:
            x.pending = Pending(before, p.events, p.frame, p.covers, p.is_rst, True, tstart)

    def hindsight(self, stateless_server: bool = False
                  ) -> tuple[list[int], list[tuple[int, int, int, int]], list[int]]:
        """What the end of the capture proves, without changing the machine (more segments
        may come): an assumed receive nothing ever answered did not happen. A SYN the peer
        never answered (it sent nothing), a SYN-ACK never acknowledged (its receiver sent
        nothing after it). Returns each side's final state, the corrections of the rows
        since (to the end: frame -1) and the indexes of the transitions it revises.
        `stateless_server`: the server answered with a SYN cookie (the caller judges it
        from the listener's other connections): it kept no connection, it was LISTEN."""
        finals = [self.client.state, self.server.state]
        fixes: list[tuple[int, int, int, int]] = []
        revised: list[int] = []
        if stateless_server and self.server.state == S.SYN_RECEIVED:
            finals[1] = S.LISTEN
            fixes.append((1, 0, -1, S.LISTEN))
            revised += [i for i, t in enumerate(self.transitions) if t.side == "server"]
        for ep, peer in ((self.client, self.server), (self.server, self.client)):
            p = ep.pending
            if p is None:
                continue
            if (_RECV_SYN in p.events and not ep.sent_any and ep.state == S.SYN_RECEIVED) or \
                    (_RECV_SYNACK in p.events and ep.state == S.ESTABLISHED
                     and peer.state not in SYNCHRONIZED):
                finals[ep.index] = p.before
                fixes.append((ep.index, p.frame, -1, p.before))
                revised += [i for i in range(p.tstart, len(self.transitions))
                            if self.transitions[i].side == ep.side]
        return finals, fixes, revised

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
        self._seg = _NO_SEGMENT._replace(frame=frame, ts_ns=ts_ns)
        self.changes = []
        self.anomaly_count = 0
        return self._apply(ep, int(ev))

    def _apply(self, ep: Endpoint, e: int, *, conf: str | None = None,
               reason: str | None = None) -> bool:
        st = ep.state
        new = _NEXT[st][e]
        if new < 0:
            self._anomaly(ep, e, anomaly_id(st, e), table_anomaly_sentence(st, e))
            return False
        guard = _GUARD[st][e]
        if guard is not None:
            verdict = guard(ep, self._seg, self)
            if not verdict.change:
                if verdict.reason is not None:
                    self._anomaly(ep, e, verdict.reason, GUARD_ANOMALIES.get(verdict.reason)
                                  or table_anomaly_sentence(st, e))
                return True
            reason = verdict.reason or reason
        if new == st:
            return True
        if reason is None:
            edge = _EDGE[st][e]
            rid, text = edge.reason, edge.sentence
        else:
            rid, text = reason, EXTRA_REASONS.get(reason) or _EDGE[st][e].sentence
        self._set_state(ep, new, rid, text, conf or _CONF[st][e], EVENT_NAMES[e])
        return True

    def _set_state(self, ep: Endpoint, new: int, reason: str, sentence: str, confidence: str,
                   event: str, revised: bool = False) -> None:
        """Every change of state goes through here."""
        old = ep.state
        ep.state = new
        self.changes.append((ep.index, old, new, confidence, reason))
        if self.keep:
            seg = self._seg
            self.transitions.append(Transition(seg.frame, seg.ts_ns, ep.side, State(old),
                                               State(new), reason, sentence, confidence, event,
                                               revised))

    def _anomaly(self, ep: Endpoint, e: int, aid: str, sentence: str) -> None:
        self.anomaly_count += 1
        if self.keep:
            seg = self._seg
            self.anomalies.append(StateAnomaly(seg.frame, seg.ts_ns, ep.side, State(ep.state),
                                               EVENT_NAMES[e], aid, sentence))


#: What `ConnectionStates.apply` feeds the guards: a segment that was not analysed.
_NO_SEGMENT = Segment(0, 0, False, 0, 0, 0, 0, 0, analysed=False)


