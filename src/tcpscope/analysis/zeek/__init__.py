"""Zeek compatibility: conn.log's ``conn_state``, ``history`` and counters for TCP.

Sans-IO, fed with the same batches as the engine::

    z = ZeekTracker()
    for chunk in Pipeline([], Options(states=False)).read(path):   # tcpscope.pipeline
        z.feed(chunk.records, chunk.annotations, chunk.ts_ns)
    z.fields()      # {stream: ZeekConn}: the Zeek connection each tcp.stream starts
    z.rows()        # every Zeek connection, as Zeek would log them (see "Splits")

Splits: Zeek forgets a connection when one of its timers fires (5 s after an
unanswered SYN, 5 s after both sides closed or one reset, 60 s / 5 min of
inactivity) or when a SYN arrives for a closed or reused connection; a later
packet then starts a *new* Zeek connection, with a new uid. tcp.stream does not
split there. `rows()` lists every Zeek connection (that is what ``--format zeek``
writes); `fields()` gives, per stream, the first one, and its ``zeek_rows`` says
how many Zeek connections the stream spans.

The package:

- conn_log.py: the conn.log row (`ZeekConn`), ``conn_state`` from the endpoint states,
  ``local_orig`` / ``local_resp``, the uid;
- connection.py: one Zeek connection's state (endpoints, reassemblers, history, timers);
- model.py: `ZeekModel`, the reference: Zeek's TCP analysis one packet at a time;
- fast.py: `ZeekTracker`, the model with runs of ordinary rows taken with numpy (the
  same results, 5-15x faster on bulk transfers); what everything uses.
"""
from .conn_log import STATE_NAMES, ZeekConn, conn_state, is_local
from .connection import TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS
from .fast import ZeekTracker
from .model import LIKELY_SERVER_PORTS, ZeekModel

__all__ = [
    "ZeekTracker",
    "ZeekModel",
    "ZeekConn",
    "STATE_NAMES",
    "LIKELY_SERVER_PORTS",
    "TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS",
    "conn_state",
    "is_local",
]
