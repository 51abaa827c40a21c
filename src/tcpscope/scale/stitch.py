"""Phase 2: one bucket's frames from every unit, in the merged frame order, through
the ordinary pipeline.

A connection that crosses units is stitched by re-running its analysis: the
bucket holds every frame of each of its connections, from every unit, each
with its global frame number (the driver's merge order), so the engine, the
lifecycle tracker and Zeek's model see exactly the frames one run would give
them for those connections, in the same order. Nothing of the engine's state
has to be carried across units (its per-connection state lives in C and is
not serialisable; the raw frames are, and re-reading them costs the bucket's
bytes, not the capture's).

What one run numbers globally — streams, in order of their first frame — a
bucket numbers locally; each task reports the first frame of each of its
streams (`first_frames`), and the driver maps local numbers to global ones.

One fact of the engine is not per connection: ``ip_id_gap`` compares a
segment's IPv4 ID with the last ID its source host spent on any packet (a host
that numbers all its packets from one counter spends IDs on its other
connections). Before each packet whose host's previous packet went to another
bucket (and whose own direction skipped IDs, the only case where the engine
reads the host's), the driver has that previous packet told to this bucket as a
ghost: its IP header alone, as a raw IPv4 frame (in the file, where the packet
is: no copy; or made, `ghost_frames`, for a pcapng or compressed file), which the
engine notes as it notes any packet that is not a whole TCP segment. Ghosts
carry the number of the packet they stand for, so they sit where it sat in the
merged order, and no output sees them (they are no connection's; the audit's
rows leave them out).
"""
from __future__ import annotations

import dataclasses
import mmap
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.pipeline import Chunk, Options, Pipeline, Result
from tcpscope.present.packets import PacketsWriter
from tcpscope.scale.partition import Part, gather, load_part

__all__ = ["BucketTask", "PartRef", "run_bucket"]

_BATCH = 65536


@dataclass
class PartRef:
    """One unit's part of a bucket, and how its rows are numbered in the merged input."""

    part: Part
    numbers: np.ndarray          #: each row's frame number in the merged input
    source: int                  #: the unit's file among the inputs
    file_frame0: int             #: frames of that file before the unit
    iface_map: np.ndarray        #: the unit's interface -> the merged input's


@dataclass
class BucketTask:
    """What a phase 2 task does: `what` is ``conns``, ``packets``, ``audit`` or ``streams``
    (only the first frame of each stream)."""

    bucket: int
    parts: list[PartRef]
    what: str
    mode: str
    files: list[str]
    interfaces: list[Interface]
    options: dict[str, Any] = field(default_factory=dict)
    #: other buckets' IPv4 packets this one's engine must hear of (`ghost_frames`)
    ghosts: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> str:
        return f"bucket {self.bucket} ({self.what})"


class _FirstFrames:
    """The first frame of each stream, in the bucket's own numbering (0, 1, ...)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self._next = 0

    def feed(self, chunk: Chunk) -> None:
        assert chunk.annotations is not None
        s = chunk.annotations["stream"]
        new = s >= self._next
        if not new.any():
            return
        streams, first = np.unique(s[new], return_index=True)
        self.frames.append(chunk.batch.frame_numbers[np.flatnonzero(new)[first]])
        self._next = int(streams[-1]) + 1

    def finish(self, result: Result) -> None:
        pass

    def result(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.empty(0, np.int64)


class _Lines(PacketsWriter):
    """The packets' text, without a header, with the streams' global numbers (`streams`:
    the bucket's local -> global), and each line's frame; with `target` (a
    `tables.ParquetPackets`), the rows written there instead."""

    def __init__(self, fmt: str, streams: np.ndarray, target: Any = None) -> None:
        super().__init__(target, "parquet" if target is not None else fmt)
        self._header = False
        self.target = target
        self.streams = streams
        self.texts: list[bytes] = []
        self.frames: list[np.ndarray] = []

    def feed(self, chunk: Chunk) -> None:
        ann = chunk.annotations
        assert ann is not None
        tcp = ann["stream"] >= 0
        ann = ann.copy()
        ann["stream"][tcp] = self.streams[ann["stream"][tcp]]
        super().feed(dataclasses.replace(chunk, annotations=ann))
        self.frames.append(chunk.batch.frame_numbers[tcp])

    def _emit(self, text: bytes) -> None:
        if self.target is not None:
            super()._emit(text)
        else:
            self.texts.append(text)

    def finish(self, result: Result) -> None:
        pass


class _Rows:
    """Every row's dissection and annotations (the audit runs on them in the driver)."""

    def __init__(self) -> None:
        self.records: list[np.ndarray] = []
        self.annotations: list[np.ndarray] = []
        self.numbers: list[np.ndarray] = []

    def feed(self, chunk: Chunk) -> None:
        assert chunk.annotations is not None
        self.records.append(chunk.records)
        self.annotations.append(chunk.annotations)
        self.numbers.append(chunk.batch.frame_numbers)

    def finish(self, result: Result) -> None:
        pass


#: The link type of a ghost (raw IPv4).
_LINKTYPE_IPV4 = 228


def ghost_frames(host: np.ndarray, ip_id: np.ndarray) -> dict[str, np.ndarray]:
    """A part's columns for bare IPv4 headers (protocol 253, experimental) from `host`
    (uint32, the address's four bytes as stored) with those IDs."""
    n = len(host)
    raw = np.zeros((n, 20), np.uint8)
    raw[:, 0], raw[:, 3], raw[:, 8], raw[:, 9] = 0x45, 20, 64, 253
    raw[:, 4], raw[:, 5] = ip_id.astype(np.uint16) >> 8, ip_id.astype(np.uint16) & 0xFF
    raw[:, 12:16] = np.ascontiguousarray(host, np.uint32).view(np.uint8).reshape(n, 4)
    twenty = np.full(n, 20, np.uint32)
    return {"caplen": twenty, "origlen": twenty, "iface": np.zeros(n, np.uint16),
            "linktype": np.full(n, _LINKTYPE_IPV4, np.uint16), "idx": np.zeros(n, np.int64),
            "ends": np.arange(20, 20 * n + 1, 20, dtype=np.int64), "data": raw.reshape(-1)}


def _ghost_parts(g: dict[str, np.ndarray]) -> list[PartRef]:
    """The ghosts as parts: IP headers where they are in their files, and made ones for
    packets of files that are not read in place."""
    if not g or not len(g["number"]):
        return []
    out = []
    here = g["l3pos"] >= 0
    for src in np.unique(g["source"][here]).tolist():
        m = here & (g["source"] == src)
        n = int(m.sum())
        hlen = g["ip_hlen"][m].astype(np.uint32)
        part = {"pos": g["l3pos"][m], "caplen": hlen, "origlen": hlen, "ts_ns": g["ts_ns"][m],
                "iface": np.zeros(n, np.uint16), "idx": np.zeros(n, np.int64),
                "linktype": np.full(n, _LINKTYPE_IPV4, np.uint16)}
        out.append(PartRef(part, g["number"][m], src, 0, np.zeros(1, np.uint16)))
    if not here.all():
        made = ghost_frames(g["host"][~here], g["ip_id"][~here])
        made["ts_ns"] = g["ts_ns"][~here]
        out.append(PartRef(made, g["number"][~here], 0, 0, np.zeros(1, np.uint16)))
    return out


def _batch(parts: list[dict[str, np.ndarray]], refs: list[PartRef],
           files: list[str]) -> FrameBatch:
    """One batch of these parts' frames, in part order. Frames of one pcap file are read
    where they are (the file mapped, no copy); others are copied end to end."""
    cols = {k: np.concatenate([p[k] for p in parts])
            for k in ("ts_ns", "caplen", "origlen", "iface", "linktype", "idx")}
    mapped = {files[r.source] for r, p in zip(refs, parts) if "pos" in p}
    if len(mapped) == 1 and all("pos" in p for p in parts):
        data: Any = _map(mapped.pop())
        offset = np.concatenate([p["pos"] for p in parts])
    else:
        pieces, shift = [], 0
        for r, p in zip(refs, parts):
            if "pos" in p:
                d, e = gather(np.frombuffer(_map(files[r.source]), np.uint8), p["pos"],
                              p["caplen"])
            else:
                d, e = p["data"], p["ends"]
            pieces.append((d, e + shift - p["caplen"].astype(np.int64)))
            shift += len(d)
        data = b"".join(d.tobytes() for d, _ in pieces)
        offset = np.concatenate([o for _, o in pieces])
    source = source_frame = None
    if len(files) > 1:
        source = np.concatenate([np.full(len(p["idx"]), r.source, np.uint16)
                                 for r, p in zip(refs, parts)])
        source_frame = np.concatenate([p["idx"] + 1 + r.file_frame0
                                       for r, p in zip(refs, parts)])
    return FrameBatch(data=data, offset=offset, caplen=cols["caplen"], origlen=cols["origlen"],
                      ts_ns=cols["ts_ns"],
                      iface=np.concatenate([r.iface_map[p["iface"]]
                                            for r, p in zip(refs, parts)]).astype(np.uint16),
                      linktype=cols["linktype"],
                      numbers=np.concatenate([r.numbers for r in refs]),
                      source=source, source_frame=source_frame)


def _map(path: str) -> Any:
    """The file, mapped read-only."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def run_bucket(task: BucketTask) -> dict[str, Any]:
    """Analyse one bucket; what it returns depends on `task.what` (see `scale.driver`)."""
    from tcpscope.present.conns import ConnsCollector

    parts = [load_part(r.part) for r in task.parts]
    refs = list(task.parts)
    ghosts = _ghost_parts(task.ghosts)
    for ref in ghosts:
        parts.append(ref.part)
        refs.append(ref)
    batch = _batch(parts, refs, task.files)
    order = np.argsort(batch.frame_numbers, kind="stable")
    first = _FirstFrames()
    if task.what == "conns":
        main: Any = ConnsCollector(ignore_checksums=task.options.get("ignore_checksums", False))
        options = Options(mode=task.mode, keep_transitions=False)
    elif task.what == "packets":
        target = None
        if task.options.get("dataset"):
            from tcpscope.present.tables import ParquetPackets

            target = ParquetPackets(os.path.join(task.options["dataset"],
                                                 f"part-{task.bucket:04d}.parquet"),
                                    files=len(task.files) > 1)
        main = _Lines(task.options["fmt"], task.options["streams"], target)
        options = Options(mode=task.mode, keep_transitions=False, summaries=False)
    elif task.what == "streams":
        main = first
        options = Options(mode=task.mode, states=False)
    elif task.what == "audit":
        main = _Rows()
        options = Options(mode=task.mode, states=False)
    else:
        raise ValueError(f"unknown work {task.what!r}")
    pipe = Pipeline([main] if main is first else [main, first], options)
    pipe.files, pipe.interfaces = task.files, task.interfaces
    try:
        for i in range(0, len(order), _BATCH):
            pipe.feed(batch.take(order[i:i + _BATCH]))
        pipe.finish()
    except BaseException:
        if isinstance(main, _Lines) and main.target is not None:
            main.target.abort()
        raise
    if isinstance(main, _Lines) and main.target is not None:
        main.target.close()
    out: dict[str, Any] = {"bucket": task.bucket, "first_frames": first.result()}
    if task.what == "conns":
        out["collected"] = main.collected
        # SYN cookies are judged per listener, across connections: the driver judges
        # every bucket's half-open connections together (`scale.driver.rejudge_cookies`)
        tracker = pipe.result.tracker
        assert tracker is not None
        out["cookies"] = [(lc.stream, listener, sa, lc.syn_cookie)
                          for lc, listener, sa in tracker.cookie_evidence()]
    elif task.what == "packets":
        out["text"] = b"".join(main.texts)
        out["frames"] = _cat(main.frames)
    elif task.what == "audit":
        ghost = np.zeros(len(batch), bool)
        ghost[len(batch) - sum(len(r.numbers) for r in ghosts):] = True
        keep = ~ghost[order]
        ordered = batch.take(order[keep])
        data, ends = gather(np.frombuffer(ordered.data, np.uint8), ordered.offset,
                            ordered.caplen)
        out["records"] = _cat(main.records)[keep]
        out["annotations"] = _cat(main.annotations)[keep]
        out["frames"] = {k: getattr(ordered, k) for k in
                         ("caplen", "origlen", "ts_ns", "iface", "linktype")}
        out["frames"]["numbers"] = ordered.frame_numbers
        out["frames"]["offset"] = ends - ordered.caplen.astype(np.int64)
        out["data"] = data.tobytes()
    return out


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, np.int64)
