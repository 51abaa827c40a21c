"""The engine's ``ip_id_gap``: packets of a sender the capture missed, from its IPv4 IDs.

Linux numbers the packets of a connected socket one by one (RFC 6864 §4 allows any scheme
for atomic datagrams), so a skipped value is a packet it sent that the capture did not see.
The annotation says so only where the IDs show such a counter: at least one step of
exactly one before, no other step, no segment merged by TSO/GRO, and no other captured
packet of the same host took the skipped ID (a host with one counter for everything, as
Windows has). Checked in both modes; the lifecycle uses it for a FIN/ACK that only looks
merged (tests/test_states_close.py, fixtures/life_missing.pcap).
"""
from __future__ import annotations

import numpy as np
import pytest

from tcpscope.analysis.engine import Analyzer
from tcpscope.wire.record import KIND
from tests.analysis_helpers import tcp_record

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)


def seg(from_server: bool, ip_id: int, flags: str = ".", length: int = 0, seq: int = 1000,
        ack: int = 5000, mss: int | None = None, client=C) -> np.ndarray:
    (src, sport), (dst, dport) = (S, client) if from_server else (client, S)
    r = tcp_record(src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                   length=length, mss=mss)
    r["ip_id"] = ip_id
    return r


def other(src: str, ip_id: int) -> np.ndarray:
    """A UDP packet of a host (not a TCP segment: no conversation)."""
    r = tcp_record(src=src, dst="10.0.0.9")
    r["kind"] = KIND["UDP"]
    r["ip_proto"] = 17
    r["ip_id"] = ip_id
    return r


def gaps(recs: list[np.ndarray], mode: str = "wireshark", split: int | None = None) -> list[int]:
    recs = np.concatenate(recs)
    n = len(recs)
    ts = np.arange(n, dtype=np.int64) * 1_000_000 + 1_700_000_000 * 10**9
    frames = np.arange(1, n + 1, dtype=np.int64)
    an = Analyzer(mode)
    step = split or n
    out = []
    for i in range(0, n, step):
        out += an.feed(recs[i:i + step], ts[i:i + step], frames[i:i + step])["ip_id_gap"].tolist()
    return out


def server_ids(*ids: int, **kw) -> list[np.ndarray]:
    return [seg(True, i, **kw) for i in ids]


@pytest.mark.parametrize("mode", ["wireshark", "improved"])
def test_a_skipped_id_is_a_missed_packet(mode):
    assert gaps(server_ids(100, 101, 103), mode) == [0, 0, 1]
    assert gaps(server_ids(100, 101, 102, 106), mode) == [0, 0, 0, 3]


def test_the_directions_count_apart():
    recs = [seg(False, 7), seg(True, 100), seg(False, 8), seg(True, 101), seg(False, 9),
            seg(True, 103)]
    assert gaps(recs) == [0, 0, 0, 0, 0, 1]


def test_whatever_the_batches():
    recs = [seg(False, 7), seg(True, 100), seg(False, 8), seg(True, 101), seg(True, 103)]
    assert gaps(recs, split=1) == gaps(recs, split=2) == gaps(recs) == [0, 0, 0, 0, 1]


def test_no_counter_no_gap():
    # one ID is not a counter; random IDs are not; after a step that is neither one nor a
    # small gap nothing more is said
    assert gaps(server_ids(100, 102)) == [0, 0]
    assert gaps(server_ids(100, 40000, 40002)) == [0, 0, 0]
    assert gaps(server_ids(100, 101, 103, 50000, 50001, 50003)) == [0, 0, 1, 0, 0, 0]
    assert gaps(server_ids(100, 101, 99, 100, 102)) == [0, 0, 0, 0, 0]   # backwards


def test_id_zero_is_left_out():
    # Linux sends SYN-ACKs and TIME-WAIT ACKs with ID 0; and a counter passing 0
    assert gaps(server_ids(0, 100, 0, 101, 103)) == [0, 0, 0, 0, 1]
    assert gaps(server_ids(65534, 65535, 1, 2)) == [0, 0, 0, 0]


def test_merged_segments_end_it():
    # a segment beyond the peer's MSS is several packets (TSO on the sender's host, GRO on
    # the receiver's): one ID for many, so IDs are not one per packet any more
    recs = [seg(False, 7, "S", seq=999, mss=1000), *server_ids(100, 101),
            seg(True, 102, "P.", length=3000), seg(True, 105, "F.")]
    assert gaps(recs) == [0, 0, 0, 0, 0]
    recs = [*server_ids(100, 101), seg(True, 102, "P.", length=1460), seg(True, 104)]
    assert gaps(recs) == [0, 0, 0, 1]      # MSS unknown: 1460 is one packet


def test_a_host_with_one_counter_spends_ids_elsewhere():
    # the skipped ID went to another captured packet of the same host: not missing
    assert gaps(server_ids(100, 101) + [other(S[0], 102)] + server_ids(103)) == [0, 0, 0, 0]
    # ... a TCP segment of another connection of that host
    recs = server_ids(100, 101) + [seg(True, 102, client=("10.0.0.3", 40001))] + \
        server_ids(103)
    assert gaps(recs) == [0, 0, 0, 0]
    # another host's packets, or an unrelated ID of the same host, change nothing
    assert gaps(server_ids(100, 101) + [other("10.0.0.7", 102)] + server_ids(103)) == \
        [0, 0, 0, 1]
    assert gaps(server_ids(100, 101) + [other(S[0], 9000)] + server_ids(103)) == [0, 0, 0, 1]
