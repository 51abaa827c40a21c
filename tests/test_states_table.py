"""The endpoint state machine's table, exhaustively: every (state, event) pair is
either one edge of the table or a recorded anomaly, every edge carries its reason,
RFC section, confidence and guard, and the machine does exactly what the table
says (analysis/states.py)."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from tcpscope.analysis import states as st
from tcpscope.analysis.machine import ConnectionStates
from tcpscope.analysis.states import TABLE, TRANSITIONS, Confidence, Event, State, anomaly_id

PAIRS = list(itertools.product(State, Event))
EDGES = {(r.state, r.event): r for r in TABLE}


def test_one_edge_per_pair():
    assert len(EDGES) == len(TABLE)
    assert TRANSITIONS == {p: r.next for p, r in EDGES.items()}


def test_every_pair_is_a_transition_or_an_anomaly():
    assert len(PAIRS) == len(State) * len(Event) == 12 * 13
    defined = {p for p in PAIRS if p in TRANSITIONS}
    anomalies = {p for p in PAIRS if p not in TRANSITIONS}
    assert defined | anomalies == set(PAIRS) and not defined & anomalies
    assert set(TRANSITIONS) <= set(PAIRS)
    ids = [anomaly_id(s, e) for s, e in anomalies]
    assert len(set(ids)) == len(ids)  # stable ids, one per pair


@pytest.mark.parametrize("state,event", PAIRS, ids=[f"{s.name}-{e.name.lower()}" for s, e in PAIRS])
def test_the_machine_follows_the_table(state, event):
    side = "client"
    cs = ConnectionStates(state, State.UNKNOWN)
    defined = cs.apply(side, event, frame=7, ts_ns=70)
    new = cs.client.state
    edge = EDGES.get((state, event))
    if edge is not None:
        assert defined and new == edge.next
        assert cs.anomalies == []
        if new != state:
            (t,) = cs.transitions
            assert (t.frame, t.ts_ns, t.side, t.old, t.new) == (7, 70, "client", state, new)
            # a guard may give a more precise reason (reset.reject: nobody listens)
            assert t.reason == edge.reason or (
                edge.guard is not None and t.reason in st.EXTRA_REASONS)
            assert t.event == event.name.lower()
            assert t.confidence == edge.confidence
        else:
            assert cs.transitions == []
    else:
        assert not defined and new == state and cs.transitions == []
        (a,) = cs.anomalies
        assert (a.frame, a.side, a.state, a.event) == (7, "client", state, event.name.lower())
        want = f"{event.name.lower()}_in_{state.name.lower()}"
        assert a.anomaly == anomaly_id(state, event) == want
    assert cs.server.state == State.UNKNOWN  # one event touches one endpoint


@pytest.mark.parametrize("edge", TABLE, ids=[f"{r.state.name}-{r.event.name.lower()}" for r in TABLE])
def test_every_edge_says_why_with_its_rfc_section(edge):
    assert re.fullmatch(r"§\d+(\.\d+)*", edge.rfc), edge.rfc
    assert edge.sentence
    if edge.changes:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", edge.reason), edge.reason
        assert edge.rfc in edge.sentence
    else:
        assert edge.reason is None
    # observed for what the endpoint sent, assumed for what it received, unless a deduction
    direction = Confidence.OBSERVED if edge.event.sending else Confidence.ASSUMED
    assert edge.confidence in (direction, Confidence.INFERRED)
    assert edge.confidence != Confidence.INFERRED or edge.changes
    assert edge.guard is None or callable(edge.guard)


def test_extra_reasons_and_guard_anomalies():
    for rid, sentence in st.EXTRA_REASONS.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", rid) and sentence
    for aid, sentence in st.GUARD_ANOMALIES.items():
        assert re.fullmatch(r"[a-z_]+", aid) and "§" in sentence


def test_shape_of_the_table():
    # Nothing ever goes back to UNKNOWN: it is the observer's "no evidence yet".
    assert all(new != State.UNKNOWN or s == State.UNKNOWN for (s, _), new in TRANSITIONS.items())
    # A RST, sent or received, closes every state but LISTEN (which ignores it, §3.10.7.2).
    for s in State:
        for e in (Event.SEND_RST, Event.RECV_RST):
            assert TRANSITIONS[(s, e)] == (State.LISTEN if s == State.LISTEN else State.CLOSED)
    # The classic diagram's edges (RFC 9293 Figure 5) are all there.
    figure5 = [
        (State.CLOSED, Event.SEND_SYN, State.SYN_SENT),
        (State.LISTEN, Event.RECV_SYN, State.SYN_RECEIVED),
        (State.LISTEN, Event.SEND_SYN, State.SYN_SENT),
        (State.SYN_SENT, Event.RECV_SYN, State.SYN_RECEIVED),
        (State.SYN_SENT, Event.RECV_SYNACK, State.ESTABLISHED),
        (State.SYN_RECEIVED, Event.RECV_ACK_OF_SYN, State.ESTABLISHED),
        (State.SYN_RECEIVED, Event.SEND_FIN, State.FIN_WAIT_1),
        (State.ESTABLISHED, Event.SEND_FIN, State.FIN_WAIT_1),
        (State.ESTABLISHED, Event.RECV_FIN, State.CLOSE_WAIT),
        (State.FIN_WAIT_1, Event.RECV_ACK_OF_FIN, State.FIN_WAIT_2),
        (State.FIN_WAIT_1, Event.RECV_FIN, State.CLOSING),
        (State.FIN_WAIT_2, Event.RECV_FIN, State.TIME_WAIT),
        (State.CLOSING, Event.RECV_ACK_OF_FIN, State.TIME_WAIT),
        (State.CLOSE_WAIT, Event.SEND_FIN, State.LAST_ACK),
        (State.LAST_ACK, Event.RECV_ACK_OF_FIN, State.CLOSED),
    ]
    for s, e, new in figure5:
        assert TRANSITIONS[(s, e)] == new


def test_text_and_mermaid_show_every_edge():
    text = st.render_text()
    mermaid = st.render_mermaid()
    lines = mermaid.splitlines()
    assert lines[0] == "stateDiagram-v2"
    edges = set()
    for line in lines[1:]:
        m = re.fullmatch(r"    (\[\*\]|[A-Z_0-9]+) --> (\[\*\]|[A-Z_0-9]+)(?: : (.+))?", line)
        assert m, line
        if m.group(3) and m.group(1) != "[*]" and m.group(2) != "[*]":
            for label in m.group(3).split(", "):
                edges.add((m.group(1), label.rstrip("*"), m.group(2)))
    expected = {(s.name, e.name.lower(), new.name)
                for (s, e), new in TRANSITIONS.items() if new != s}
    assert edges == expected
    for s, e, new in expected:
        assert re.search(rf"^{s}\s+--\[[^\]]*\b{e}\b[^\]]*\]--> {new}$", text, re.M), (s, e, new)
    table = st.render_table()
    assert table.count("\n") >= len(State) + 2
    for s in State:
        row = next(line for line in table.splitlines() if line.startswith(s.name + " "))
        cells = [c.strip() for c in row.split("|")[1:]]
        for e, cell in zip(Event, cells):
            new = TRANSITIONS.get((s, e))
            assert cell == ("!" if new is None else "." if new == s else str(int(new)))


def test_native_state_names_agree():
    """_format.c prints the names of annotation.h's TCPS_STATES: the same as State."""
    from tcpscope.analysis.annotation import ANNOTATION_DTYPE
    from tcpscope.present.packets import format_batch
    from tcpscope.wire.record import RECORD_DTYPE

    n = len(State)
    ann = np.zeros(n, ANNOTATION_DTYPE)
    recs = np.zeros(n, RECORD_DTYPE)
    recs["ip_version"] = 4
    values = np.arange(n, dtype=np.uint8)
    text = format_batch(recs, ann, np.zeros(n, np.int64), "csv", client_state=values,
                        server_state=values[::-1].copy()).decode()
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    header = ("frame,ts,stream,src,sport,dst,dport,flags,seq,ack,rel_seq,rel_ack,len,win,"
              "win_scaled,options,checksum,analysis,dup_ack_num,bytes_in_flight,ack_rtt,"
              "acks_frame,irtt,client_state,server_state,events,rules").split(",")
    got = [(r[header.index("client_state")], r[header.index("server_state")]) for r in rows]
    assert got == [(State(i).name, State(n - 1 - i).name) for i in range(n)]
