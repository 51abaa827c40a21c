"""Phase 1: a unit's frames, put into buckets by a symmetric flow hash.

Every frame of a unit that passes the capture filter goes to bucket
``hash(flow) % buckets``, where the flow hash is the same for both directions
of an address/port pair (the engine keys connections by that pair, direction
free, so every frame of a connection, in both directions and in every unit,
lands in one bucket). Frames that are not TCP are hashed by their addresses
(ports 0) and go along: the engine and the audit see them as they would in one
run.

A bucket's part is columns: the frame's index in the unit, timestamp, lengths,
interface, link type, and where its bytes are: its offset in the capture file
(``pos``: a range of a plain pcap file, which phase 2 maps), or the bytes
themselves (``data``, ``ends``: a whole pcapng or compressed file). A part is
returned in memory or written as a Parquet file (`store`: a directory;
pyarrow), one per unit and bucket, named by both. `UnitMeta` goes back to the
driver: the unit's frame count and, per frame, its timestamp (the merge order
of several files), bucket, and for the ghosts of stitch.py its IPv4 source, ID,
a hash of its direction and where its IP header is; its interfaces, damage and
where its last record ends.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tcpscope.capture.batch import Interface
from tcpscope.capture.bpf import CaptureFilter
from tcpscope.capture.errors import Damage
from tcpscope.scale.units import Unit, read_unit
from tcpscope.wire.dissect import dissect_batch

__all__ = ["DROPPED", "Part", "UnitMeta", "flow_hashes", "gather", "load_part",
           "partition_unit"]

#: The bucket of a frame the capture filter dropped.
DROPPED = np.uint16(0xFFFF)

_M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)

#: A part: its columns in memory, or the path of its Parquet file.
Part = dict | str


@dataclass
class UnitMeta:
    """What phase 1 tells the driver about one unit (per-frame arrays in unit order)."""

    unit: Unit
    frames: int
    ts_ns: np.ndarray                  #: int64
    bucket: np.ndarray                 #: uint16 (DROPPED: the capture filter dropped it)
    host: np.ndarray                   #: uint32 IPv4 source (0: not IPv4, or ID 0)
    ip_id: np.ndarray                  #: uint16
    direction: np.ndarray              #: uint64, a hash of (src, sport, dst, dport)
    l3pos: np.ndarray                  #: int64 file offset of the IP header (-1: unknown)
    ip_hlen: np.ndarray                #: uint8 its length
    interfaces: list[Interface]
    damage: Damage | None
    stop: int | None
    parts: dict[int, Part] = field(default_factory=dict)  #: bucket -> its part


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(31))) * _M1
        x = (x ^ (x >> np.uint64(29))) * _M2
        return x ^ (x >> np.uint64(32))


def flow_hashes(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's flow hash, the same both ways, and its direction's hash."""
    def end(addr: str, port: str) -> np.ndarray:
        a = np.ascontiguousarray(records[addr]).view(np.uint64).reshape(-1, 2)
        with np.errstate(over="ignore"):
            return _mix(a[:, 0] ^ _mix(a[:, 1] ^ records[port].astype(np.uint64)))

    src, dst = end("src", "sport"), end("dst", "dport")
    with np.errstate(over="ignore"):
        return _mix(src + dst), _mix(src ^ _mix(dst))


def gather(raw: np.ndarray, offset: np.ndarray, caplen: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """The bytes ``raw[offset[i]:offset[i] + caplen[i]]`` end to end, and where each ends."""
    caplen = caplen.astype(np.int64)
    ends = np.cumsum(caplen)
    if not len(offset):
        return raw[:0].copy(), ends
    idx = np.repeat(offset.astype(np.int64) - (ends - caplen), caplen)
    idx += np.arange(int(ends[-1]), dtype=np.int64)
    return raw[idx], ends


def partition_unit(unit: Unit, buckets: int, capture_filter: str | None = None,
                   store: str | None = None) -> UnitMeta:
    """Read `unit` and split its frames into buckets (see the module's docstring)."""
    frames, info = read_unit(unit)
    flt = CaptureFilter(capture_filter) if capture_filter else None
    cols: dict[int, list[dict[str, np.ndarray]]] = {}
    per_frame: dict[str, list[np.ndarray]] = {
        k: [] for k in ("ts_ns", "bucket", "host", "ip_id", "direction", "l3pos", "ip_hlen")}
    seen = 0
    for batch, pos in frames:
        n = len(batch)
        rec = dissect_batch(batch)
        flow, direction = flow_hashes(rec)
        b = (flow % np.uint64(buckets)).astype(np.uint16)
        if flt is not None:
            keep = flt.match(batch, np.full(n, info.swapped) if info.swapped else None)
            b[~keep] = DROPPED
        l3pos = np.full(n, -1, np.int64) if pos is None else pos + rec["l3_off"]
        for key, col in (("ts_ns", np.asarray(batch.ts_ns, np.int64)), ("bucket", b),
                         ("host", _hosts(rec)), ("ip_id", rec["ip_id"].astype(np.uint16)),
                         ("direction", direction), ("l3pos", l3pos),
                         ("ip_hlen", rec["ip_hlen"])):
            per_frame[key].append(col)
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(buckets + 1))
        raw = np.frombuffer(batch.data, np.uint8) if pos is None else None
        for k in range(buckets):
            rows = order[bounds[k]:bounds[k + 1]]
            if not len(rows):
                continue
            piece = {"idx": rows.astype(np.int64) + seen, "ts_ns": batch.ts_ns[rows],
                     "caplen": batch.caplen[rows], "origlen": batch.origlen[rows],
                     "iface": batch.iface[rows], "linktype": batch.linktype[rows]}
            if raw is None:
                piece["pos"] = pos[rows]
            else:
                piece["data"], piece["ends"] = gather(raw, batch.offset[rows],
                                                      batch.caplen[rows])
            cols.setdefault(k, []).append(piece)
        seen += n
    parts: dict[int, Part] = {}
    for k, pieces in cols.items():
        part = _concat(pieces)
        parts[k] = part if store is None else _write(part, store, unit, k)
    cat = {k: np.concatenate(v) if v else np.empty(0, np.int64) for k, v in per_frame.items()}
    return UnitMeta(unit, info.frames, cat["ts_ns"], cat["bucket"].astype(np.uint16),
                    cat["host"].astype(np.uint32), cat["ip_id"].astype(np.uint16),
                    cat["direction"].astype(np.uint64), cat["l3pos"].astype(np.int64),
                    cat["ip_hlen"].astype(np.uint8), info.interfaces, info.damage, info.stop,
                    parts)


def _hosts(rec: np.ndarray) -> np.ndarray:
    """Each row's IPv4 source address as the engine keys its hosts (the four bytes as
    stored), 0 where the row spends no IPv4 ID (not IPv4, or ID 0)."""
    src = np.ascontiguousarray(rec["src"][:, :4]).view(np.uint32).reshape(-1).copy()
    src[(rec["ip_version"] != 4) | (rec["ip_id"] == 0)] = 0
    return src


def _concat(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0] if k != "ends"}
    if "ends" in pieces[0]:
        shift = np.cumsum([0] + [len(p["data"]) for p in pieces[:-1]])
        out["ends"] = np.concatenate([p["ends"] + s for p, s in zip(pieces, shift)])
    return out


_COLUMNS = ("idx", "ts_ns", "caplen", "origlen", "iface", "linktype")


def _write(part: dict[str, np.ndarray], store: str, unit: Unit, bucket: int) -> str:
    """The part as a Parquet file in `store`: the columns, and ``pos`` or ``frame``
    (binary: the bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(part["idx"])
    cols: dict[str, Any] = {k: part[k] for k in _COLUMNS}
    if "pos" in part:
        cols["pos"] = part["pos"]
    else:
        offsets = np.concatenate(([0], part["ends"])).astype(np.int64)
        cols["frame"] = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(part["data"])])
    path = os.path.join(store, f"bucket={bucket:04d}",
                        f"unit-{unit.index:05d}-{unit.start:012d}-{unit.end or 0:012d}.parquet")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.table(cols), path, compression="none", use_dictionary=False,
                   write_statistics=False)
    return path


def load_part(part: Part) -> dict[str, np.ndarray]:
    """A part's columns (read from its Parquet file when it is a path)."""
    if isinstance(part, dict):
        return part
    import pyarrow.parquet as pq

    table = pq.read_table(part)
    out = {k: table.column(k).to_numpy() for k in _COLUMNS}
    if "pos" in table.column_names:
        out["pos"] = table.column("pos").to_numpy()
        return out
    frame = table.column("frame").combine_chunks()
    _, offsets, data = frame.buffers()
    off = np.frombuffer(offsets, np.int64)[frame.offset:frame.offset + len(frame) + 1]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    out["data"] = raw[int(off[0]):int(off[-1])]
    out["ends"] = off[1:] - off[0]
    return out
