"""The driver: plan the units, run both phases on an executor, give one run's answers.

    scale = Scale(workers=4)                    # or Scale(dask="tcp://10.0.0.5:8786")
    collected = scaled_conns(Input(("rotated/",)), "wireshark", scale)

1. The inputs become units (units.py); phase 1 (partition.py) reads each and
   puts its frames into buckets by flow.
2. The driver checks the ranges (each stops where the next starts; else the two
   are read again as one), drops what a single run would not read (a file's
   units after its first damage), and numbers every frame as the merged input
   numbers it: a single file in file order; several files as mergecap merges
   them (by time, each file in its own order, the first file on a tie: a stable
   sort on each file's running maximum of timestamps, which is the same order).
3. Phase 2 (stitch.py) analyses each bucket; streams are renumbered by their
   first frame, as one run numbers them; the answers are put together in frame
   or stream order.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import CaptureError, Damage
from tcpscope.capture.inputs import expand_inputs
from tcpscope.capture.merge import _identity
from tcpscope.capture.opener import open_capture
from tcpscope.pipeline import Chunk, Input, Result
from tcpscope.scale.executor import Executor, executor
from tcpscope.scale.partition import DROPPED, UnitMeta, partition_unit
from tcpscope.scale.stitch import BucketTask, PartRef, run_bucket
from tcpscope.scale.units import Unit, plan_units

__all__ = ["Scale", "Work", "why_not"]


@dataclass(frozen=True)
class Scale:
    """How to spread the work: `workers` local processes, or a Dask cluster (`dask`: a
    scheduler's address, or ``local``); ranges of about `unit_bytes` of big pcap files;
    `buckets` flow buckets (default four per worker, at least 8); Parquet buckets in
    `scratch` (default: a temporary directory when pyarrow is there, else in memory;
    with Dask on several machines it must be a directory they all see)."""

    workers: int = 1
    dask: str | None = None
    unit_bytes: int = 64 << 20
    buckets: int | None = None
    scratch: str | None = None

    @property
    def active(self) -> bool:
        return self.dask is not None or self.workers > 1


def why_not(inp: Input, *, rows: bool) -> str | None:
    """Why `inp` is read by one process after all (None: it can be spread): standard
    input, -c (a count in the merged order), and for per-row outputs a row selection."""
    if any(hasattr(f, "read") or os.fspath(f) == "-" for f in inp.files):
        return "standard input is read by one process"
    if inp.count is not None:
        return "-c counts frames in the merged order, read by one process"
    if rows and inp.select is not None:
        return "--stream and -Y on rows are applied by one process"
    return None


def _captures(inp: Input) -> tuple[list[str], list[tuple[str, str]]]:
    """The input's files, as `open_inputs` opens them, and the skipped ones."""
    files, skipped = [], []
    for src, from_dir in expand_inputs(inp.files):
        path = os.fspath(src)  # type: ignore[arg-type]
        try:
            open_capture(path).close()
        except CaptureError as exc:
            if not from_dir:
                raise
            skipped.append((path, exc.reason or str(exc)))
            continue
        files.append(path)
    if not files:
        raise CaptureError.for_file(", ".join(os.fspath(f) for f in inp.files),
                                    "no capture file among the inputs")
    return files, skipped


class Work:
    """One spread-out run: phase 1 at construction, phase 2 by `run`."""

    def __init__(self, inp: Input, scale: Scale, *, progress: bool = False,
                 ex: Executor | None = None) -> None:
        self.scale = scale
        self.files, self.skipped = _captures(inp)
        self._own_ex = ex is None
        self.ex: Executor = ex if ex is not None else executor(scale.workers, scale.dask)
        if progress:
            self.ex.progress = _progress
        self.buckets = scale.buckets or max(8, 4 * self.ex.workers)
        self._own_store = None
        store = scale.scratch
        if store is None and _have_pyarrow():
            store = self._own_store = tempfile.mkdtemp(prefix="tcpscope-buckets-")
        self.store = store
        try:
            self.metas = self._phase1(inp.capture_filter)
            self._number()
        except BaseException:
            self.close()
            raise

    @property
    def notes(self) -> list[str]:
        return self.ex.notes

    def close(self) -> None:
        if self._own_ex:
            self.ex.close()
        if self._own_store is not None:
            shutil.rmtree(self._own_store, ignore_errors=True)
            self._own_store = None

    # -- phase 1 ---------------------------------------------------------------------------

    def _phase1(self, capture_filter: str | None) -> list[UnitMeta]:
        part = functools.partial(partition_unit, buckets=self.buckets,
                                 capture_filter=capture_filter, store=self.store)
        units = plan_units(self.files, self.scale.unit_bytes)
        metas = self.ex.map(part, units)
        while True:
            bad = [k for k in range(len(metas) - 1) if _misaligned(metas[k], metas[k + 1])]
            if not bad:
                break
            # read the range and the next one again as one (from a known boundary)
            merged, drop = [], set()
            for k in bad:
                if k in drop:
                    continue
                a, b = metas[k].unit, metas[k + 1].unit
                merged.append((k, Unit(a.file, a.index, a.start, b.end, whole=False)))
                drop.update((k, k + 1))
            again = self.ex.map(part, [u for _, u in merged])
            for k in drop:
                _remove(metas[k])
            news = dict(zip((k for k, _ in merged), again))
            metas = [news.get(k, m) for k, m in enumerate(metas) if k not in drop or k in news]
        # a single run stops reading a file at its first damage
        kept, damaged = [], set()
        for m in metas:
            if m.unit.index in damaged:
                _remove(m)
                continue
            kept.append(m)
            if m.damage is not None:
                damaged.add(m.unit.index)
        return kept

    # -- numbering -------------------------------------------------------------------------

    def _number(self) -> None:
        """Each unit's frame numbers in the merged input, its file's frames before it, the
        merged interfaces and the damage of each file."""
        metas = self.metas
        before, count = [], {}
        for m in metas:
            before.append(count.get(m.unit.index, 0))
            count[m.unit.index] = count.get(m.unit.index, 0) + m.frames
        self.file_frame0 = before
        if len(self.files) == 1:
            self.numbers = [np.arange(b + 1, b + 1 + m.frames, dtype=np.int64)
                            for b, m in zip(before, metas)]
        else:
            keys = []
            for f in range(len(self.files)):
                ts = [m.ts_ns for m in metas if m.unit.index == f]
                keys.append(np.maximum.accumulate(np.concatenate(ts)) if ts else
                            np.empty(0, np.int64))
            key = np.concatenate(keys)
            file = np.concatenate([np.full(len(k), f, np.int64) for f, k in enumerate(keys)])
            pos = np.concatenate([np.arange(len(k)) for k in keys])
            numbers = np.empty(len(key), np.int64)
            numbers[np.lexsort((pos, file, key))] = np.arange(1, len(key) + 1)
            start = np.cumsum([0] + [len(k) for k in keys])
            self.numbers = [numbers[start[m.unit.index] + b:start[m.unit.index] + b + m.frames]
                            for b, m in zip(before, metas)]
        self.interfaces: list[Interface] = []
        ids: dict[Interface, int] = {}
        self.iface_maps = []
        for m in metas:
            gids = []
            for iface in m.interfaces:
                key = _identity(iface) if len(self.files) > 1 else iface
                if key not in ids:
                    ids[key] = len(self.interfaces)
                    self.interfaces.append(dataclasses.replace(iface, index=ids[key]))
                gids.append(ids[key])
            self.iface_maps.append(np.array(gids or [0], np.uint16))
        self._ghosts()
        self.damages = [(m.unit.file, Damage(m.damage.byte_offset, b + m.damage.frame,
                                             m.damage.reason))
                        for b, m in zip(before, metas) if m.damage is not None]

    def _ghosts(self) -> None:
        """For each bucket, the IPv4 packets of other buckets its engine must note: the
        previous packet of a host, in the merged order, where it went elsewhere and the
        engine may read it: the packet's direction had a packet before, whose ID is not
        the one just before its own (see stitch.py)."""
        def cat(key: str) -> np.ndarray:
            return np.concatenate([getattr(m, key) for m in self.metas])

        self.ghosts: dict[int, dict[str, np.ndarray]] = {}
        if not self.metas:
            return
        number = np.concatenate(self.numbers)
        bucket, host, ip_id, direction = cat("bucket"), cat("host"), cat("ip_id"), \
            cat("direction")
        rows = np.flatnonzero((host != 0) & (bucket != DROPPED))

        def by(key: np.ndarray) -> np.ndarray:
            """`rows` by `key`, then number (one file: rows are in number order)."""
            if len(self.files) == 1:
                return rows[np.argsort(key[rows], kind="stable")]
            return rows[np.lexsort((number[rows], key[rows]))]

        by_dir = by(direction)
        same = direction[by_dir[1:]] == direction[by_dir[:-1]]
        step = (ip_id[by_dir[1:]].astype(np.int64) - ip_id[by_dir[:-1]]) & 0xFFFF
        reads = np.zeros(len(number), bool)
        reads[by_dir[1:][same & (step != 1)]] = True
        by_host = by(host)
        p, q = by_host[1:], by_host[:-1]
        need = (host[p] == host[q]) & (bucket[p] != bucket[q]) & reads[p]
        p, q = p[need], q[need]
        ts, l3pos, hlen = cat("ts_ns"), cat("l3pos"), cat("ip_hlen")
        source = np.concatenate([np.full(m.frames, m.unit.index, np.uint16)
                                 for m in self.metas])
        for b in np.unique(bucket[p]).tolist():
            g = q[bucket[p] == b]
            self.ghosts[b] = {"number": number[g], "ts_ns": ts[g], "host": host[g],
                              "ip_id": ip_id[g], "source": source[g], "l3pos": l3pos[g],
                              "ip_hlen": hlen[g]}

    # -- phase 2 ---------------------------------------------------------------------------

    def run(self, what: str, mode: str, streams: dict[int, np.ndarray] | None = None,
            **options: Any) -> tuple[list[dict], list[np.ndarray]]:
        """Analyse every bucket; their results, and each bucket's local -> global streams
        (`streams`: those maps, known already: the tasks print global numbers)."""
        tasks = []
        for b in range(self.buckets):
            refs = [PartRef(m.parts[b], nums[m.bucket == b], m.unit.index, f0, imap)
                    for m, nums, f0, imap in zip(self.metas, self.numbers, self.file_frame0,
                                                 self.iface_maps) if b in m.parts]
            if refs:
                extra = {} if streams is None else {"streams": streams[b]}
                tasks.append(BucketTask(b, refs, what, mode, self.files, self.interfaces,
                                        {**options, **extra}, self.ghosts.get(b, {})))
        # the biggest buckets first: a long bucket started last would finish alone
        tasks.sort(key=lambda t: -sum(len(r.numbers) for r in t.parts))
        results = self.ex.map(run_bucket, tasks)
        firsts = [r["first_frames"] for r in results]
        allf = np.concatenate(firsts) if firsts else np.empty(0, np.int64)
        glob = np.empty(len(allf), np.int64)
        glob[np.argsort(allf, kind="stable")] = np.arange(len(allf))
        start = np.cumsum([0] + [len(f) for f in firsts])
        maps = [glob[start[i]:start[i + 1]] for i in range(len(firsts))]
        return results, maps

    def result(self, name: str) -> Result:
        res = Result(name)
        res.damages = list(self.damages)
        res.damage = res.damages[0][1] if res.damages else None
        res.skipped = list(self.skipped)
        res.interfaces = self.interfaces
        return res


def _have_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _misaligned(a: UnitMeta, b: UnitMeta) -> bool:
    """Two ranges of one file where the first did not stop exactly where the next
    starts (and did not stop at damage)."""
    return (not a.unit.whole and a.unit.index == b.unit.index and a.damage is None
            and a.stop != b.unit.start)


def _remove(m: UnitMeta) -> None:
    for p in m.parts.values():
        if isinstance(p, str):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"\r\x1b[Ktcpscope: {done}/{total} tasks")
    if done == total:
        sys.stderr.write("\r\x1b[K")
    sys.stderr.flush()


# -- the answers ---------------------------------------------------------------------------

def scaled_conns(inp: Input, mode: str, scale: Scale, *, ignore_checksums: bool = False,
                 notes: Callable[[str], None] | None = None, ex: Executor | None = None) -> Any:
    """The `present.conns.Collected` of `inp`, as `present.conns.collect` gives it."""
    from tcpscope.analysis.zeek.conn_log import make_uid
    from tcpscope.present.conns import Collected, ConnRecord

    work = Work(inp, scale, progress=notes is not None and sys.stderr.isatty(), ex=ex)
    try:
        results, maps = work.run("conns", mode, ignore_checksums=ignore_checksums)
    finally:
        work.close()
    _tell(work, notes)
    records, zeek, offloaded = [], [], 0
    flips = rejudge_cookies(results, maps)
    for r, m in zip(results, maps):
        c = r["collected"]
        offloaded += c.offloaded
        uids = {}
        for z in c.zeek_rows:
            g = int(m[z.stream])
            addr = next(a for a in ((z.orig_h, z.orig_p, z.resp_h, z.resp_p),
                                    (z.resp_h, z.resp_p, z.orig_h, z.orig_p))
                        if make_uid(z.stream, z.part, z.ts_ns, a) == z.uid)
            new = dataclasses.replace(z, stream=g, uid=make_uid(g, z.part, z.ts_ns, addr))
            uids[z.uid] = new.uid
            zeek.append(new)
        for rec in c.records:
            v = dict(rec.values)
            v["stream"] = int(m[v["stream"]])
            if v["stream"] in flips:
                v["server_state"] = flips[v["stream"]]
            if v["zeek_uid"] is not None:
                v["zeek_uid"] = uids[v["zeek_uid"]]
            records.append(ConnRecord(v))
    records.sort(key=lambda r: r.values["stream"])
    zeek.sort(key=lambda z: (z.stream, z.part))
    return Collected(records, zeek, offloaded)


def rejudge_cookies(results: list[dict[str, Any]], maps: list[Any]) -> dict[int, str]:
    """The server's final state of the half-open connections whose SYN-cookie verdict
    changes when every bucket's evidence is judged together, as one run judges it (a
    connection answered with a cookie leaves its server LISTEN, else SYN_RECEIVED)."""
    from tcpscope.analysis.lifecycle.reference import cookie_answers

    evidence, local = [], {}
    for r, m in zip(results, maps):
        for stream, listener, sa, cookie in r["cookies"]:
            g = int(m[stream])
            evidence.append((g, listener, sa))
            local[g] = cookie
    return {g: "LISTEN" if cookie else "SYN_RECEIVED"
            for g, cookie in cookie_answers(evidence).items() if cookie != local[g]}


def scaled_packets(inp: Input, out: BinaryIO | str, fmt: str, mode: str, scale: Scale, *,
                   notes: Callable[[str], None] | None = None, ex: Executor | None = None,
                   dataset: bool = False) -> None:
    """Write what `present.packets.write_packets` writes (one record per TCP packet); with
    `dataset` (Parquet), the directory `out` of one file per bucket, each in frame order,
    written by the workers (the rows of one run, not in one order)."""
    from tcpscope.capture.writer import AtomicOutput
    from tcpscope.present import _packets

    if fmt == "parquet" and dataset:
        _dataset(inp, os.fspath(out), mode, scale, notes, ex)  # type: ignore[arg-type]
        return
    work = Work(inp, scale, progress=notes is not None and sys.stderr.isatty(), ex=ex)
    try:
        # the streams first (the engine alone), then the text with their global numbers
        found, maps = work.run("streams", mode)
        results, _ = work.run("packets", mode, fmt="csv" if fmt == "parquet" else fmt,
                              streams={r["bucket"]: m for r, m in zip(found, maps)})
    finally:
        work.close()
    _tell(work, notes)
    multi = len(work.files) > 1
    lines: list[bytes] = []
    for r in results:
        lines.extend(r["text"].splitlines(keepends=True))
    frames = [r["frames"] for r in results]
    order = np.argsort(np.concatenate(frames)).tolist() if frames else []
    header = _packets.format_packets(b"", b"", b"", True, True)
    if multi:
        header = header.rstrip(b"\n") + b",file,file_frame\n"

    def text(rows: list[int]) -> bytes:
        return b"".join([lines[i] for i in rows])

    if fmt == "parquet":
        from tcpscope.present.tables import ParquetPackets

        target = ParquetPackets(os.fspath(out), files=multi)  # type: ignore[arg-type]
        try:
            for i in range(0, len(order), 65536):
                target.write_csv(header + text(order[i:i + 65536]))
        except BaseException:
            target.abort()
            raise
        target.close()
        return
    atomic = AtomicOutput(out) if isinstance(out, (str, os.PathLike)) else None
    stream = atomic.file if atomic is not None else out
    try:
        if fmt == "csv":
            stream.write(header)
        for i in range(0, len(order), 65536):
            stream.write(text(order[i:i + 65536]))
        stream.flush()
    except BaseException:
        if atomic is not None:
            atomic.abort()
        raise
    if atomic is not None:
        atomic.commit()


def _dataset(inp: Input, out: str, mode: str, scale: Scale,
             notes: Callable[[str], None] | None, ex: Executor | None) -> None:
    """The per-packet Parquet dataset: written into a new directory beside `out`, which
    becomes `out` once complete (`out` must not exist, or be empty)."""
    if os.path.isdir(out) and os.listdir(out):
        raise CaptureError.for_file(out, "the Parquet dataset's directory is not empty")
    parent = os.path.dirname(os.path.abspath(out)) or "."
    tmp = tempfile.mkdtemp(prefix=".tcpscope-dataset-", dir=parent)
    work = Work(inp, scale, progress=notes is not None and sys.stderr.isatty(), ex=ex)
    try:
        found, maps = work.run("streams", mode)
        work.run("packets", mode, fmt="csv", dataset=tmp,
                 streams={r["bucket"]: m for r, m in zip(found, maps)})
        if os.path.isdir(out):
            os.rmdir(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        work.close()
    _tell(work, notes)


def scaled_audit(inp: Input, mode: str, scale: Scale, *,
                 notes: Callable[[str], None] | None = None, ex: Executor | None = None) -> Any:
    """The `analysis.audit.AuditReport` of `inp`: the engine runs per bucket; the audit's
    detectors (which look across connections: scans, floods) run here, over the rows in
    frame order, cut into the batches one run would read (its storm windows depend on
    them)."""
    from tcpscope.analysis.audit import Audit

    work = Work(inp, scale, progress=notes is not None and sys.stderr.isatty(), ex=ex)
    try:
        results, maps = work.run("audit", mode)
    finally:
        work.close()
    _tell(work, notes)
    audit = Audit()
    res = work.result(", ".join(work.files))
    if not results:   # no frame at all
        audit.finish(res)
        return audit.report
    records = np.concatenate([r["records"] for r in results])
    ann = np.concatenate([r["annotations"] for r in results])
    for r, m, a in zip(results, maps, _split(ann, [len(r["records"]) for r in results])):
        s = a["stream"]
        tcp = s >= 0
        s[tcp] = m[s[tcp]]
    shift = np.cumsum([0] + [len(r["data"]) for r in results[:-1]])
    cols = {k: np.concatenate([r["frames"][k] for r in results])
            for k in ("caplen", "origlen", "ts_ns", "iface", "linktype", "numbers")}
    offset = np.concatenate([r["frames"]["offset"] + s for r, s in zip(results, shift)])
    data = b"".join(r["data"] for r in results)
    order = np.argsort(cols["numbers"], kind="stable")
    rows = 0
    for n, first in _batches(inp):
        sel = order[rows:rows + n]
        batch = FrameBatch(data, offset[sel], cols["caplen"][sel], cols["origlen"][sel],
                           cols["ts_ns"][sel], cols["iface"][sel], cols["linktype"][sel],
                           first_frame=first, numbers=cols["numbers"][sel])
        audit.feed(Chunk(batch, records[sel], ann[sel], None, rows, work.interfaces,
                         work.files))
        rows += n
    res.rows = rows
    audit.finish(res)
    return audit.report


def _batches(inp: Input) -> list[tuple[int, int]]:
    """(frames, first_frame) of each batch one run reads: the audit's windows count rows
    per batch, so it is given the same batches. Reads the input without dissecting it."""
    from tcpscope.capture.inputs import open_inputs

    with open_inputs(inp.files, capture_filter=inp.capture_filter) as cap:
        return [(len(b), b.first_frame) for b in cap]


def _split(arr: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Views of `arr` in pieces of `sizes`."""
    start = np.cumsum([0] + sizes)
    return [arr[start[i]:start[i + 1]] for i in range(len(sizes))]


def _tell(work: Work, notes: Callable[[str], None] | None) -> None:
    if notes is not None:
        for n in work.notes:
            notes(n)
