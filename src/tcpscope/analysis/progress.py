"""How far each side of one connection had got before each of its packets.

For telling a connection packet by packet (present/story/) a packet is read
against what its sender and its peer had done before it: the highest sequence
number either had sent data up to (and which packet first reached it), the
highest ACK it had sent, its FIN. `progress` walks the connection's rows once,
in capture order, and gives per row the (client, server) `SoFar` before it.

What counts (the engine's relative numbers, so only analysed segments; a SYN or
RST is neither data nor an ACK here): data is a segment's payload, an ACK is
the acknowledgement field of a segment with the ACK bit, a side's first SYN-ACK
included (it acknowledges the peer's SYN).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..wire.record import ACK, FIN, RST, SYN
from .annotation import ANN_KIND

__all__ = ["SoFar", "progress"]

_ANALYSED = ANN_KIND["analysed"]


class SoFar(NamedTuple):
    """What one side had sent and acknowledged before a packet."""

    data_end: int = -1          #: highest relative seq + length of its data (-1: no data)
    #: (frame, relative seq, length) of the packet that first reached `data_end`
    data_by: tuple[int, int, int] | None = None
    acked: int = -1             #: the highest relative ACK it had sent (-1: none)
    fin_seq: int | None = None  #: relative seq of the highest FIN it had sent
    fin_frame: int = 0          #: the packet of that FIN


def progress(records: np.ndarray, annotations: np.ndarray, frames: np.ndarray,
             from_server: np.ndarray) -> list[tuple[SoFar, SoFar]]:
    """Per row of one connection's rows (in capture order; `from_server` by the
    connection's roles): (client's, server's) `SoFar` before that row."""
    out: list[tuple[SoFar, SoFar]] = []
    sides = [SoFar(), SoFar()]
    synack_seen = [False, False]
    cols = zip(records["tcp_flags"].tolist(), records["payload_len"].tolist(),
               (annotations["kind"] == _ANALYSED).tolist(), annotations["rel_seq"].tolist(),
               annotations["rel_ack"].tolist(), np.asarray(frames).tolist(),
               np.asarray(from_server).tolist())
    for fl, length, analysed, rel_seq, rel_ack, frame, fs in cols:
        out.append((sides[0], sides[1]))
        if not analysed or fl & RST:
            continue
        x = sides[fs]
        if fl & SYN:
            if fl & ACK and not synack_seen[fs]:
                synack_seen[fs] = True
                if rel_ack > x.acked:
                    sides[fs] = x._replace(acked=rel_ack)
            continue
        end = rel_seq + length
        if length and end > x.data_end:
            x = x._replace(data_end=end, data_by=(frame, rel_seq, length))
        if fl & ACK and rel_ack > x.acked:
            x = x._replace(acked=rel_ack)
        if fl & FIN and (x.fin_seq is None or end > x.fin_seq):
            x = x._replace(fin_seq=end, fin_frame=frame)
        sides[fs] = x
    return out
