"""tshark as the oracle of the Wireshark analysis mode: run it, parse it, compare.

Used by tests/test_tshark_agreement.py and by `python -m tests.tshark_oracle FILE...`
(a table of agreement per field, and the disagreeing frames, for development).

tshark runs once per file, one pass, default preferences, with the fields of
`FIELDS`. Its output is cached by the file's content, the tshark version and
the field list (in $TCPSCOPE_ORACLE_CACHE, default ~/.cache/tcpscope/tshark),
so repeated runs cost only the engine's time.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FLAGS = (
    "retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
    "lost_segment", "ack_lost_segment", "duplicate_ack", "zero_window", "zero_window_probe",
    "zero_window_probe_ack", "window_full", "window_update", "keep_alive", "keep_alive_ack",
    "reused_ports",
)
VALUES = ("duplicate_ack_num", "bytes_in_flight", "ack_rtt", "initial_rtt", "acks_frame",
          "push_bytes_sent")
FIELDS = (
    ["frame.number", "tcp.stream", "tcp.seq", "tcp.ack", "tcp.window_size"]
    + [f"tcp.analysis.{f}" for f in FLAGS]
    + [f"tcp.analysis.{v}" for v in VALUES]
)
#: The fields compared, in table order (flags by their Wireshark names).
COMPARED = ("stream", "seq", "ack", "window_size") + FLAGS + VALUES


def tshark_version() -> str:
    out = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def _cache_dir() -> Path:
    d = Path(os.environ.get("TCPSCOPE_ORACLE_CACHE", Path.home() / ".cache" / "tcpscope" / "tshark"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _readable_copy(path: Path, tmp: Path) -> Path:
    """tshark 4.0 reads gzip but not zstd/xz: decompress those to a temporary file."""
    head = path.read_bytes()[:6]
    if head[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        out = tmp / (path.name + ".pcap")
        with open(path, "rb") as src, open(out, "wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
        return out
    if head[:6] == b"\xfd7zXZ\x00":
        import lzma

        out = tmp / (path.name + ".pcap")
        out.write_bytes(lzma.decompress(path.read_bytes()))
        return out
    if head[:2] == b"\x1f\x8b" and False:  # tshark reads gzip itself
        out = tmp / (path.name + ".pcap")
        out.write_bytes(gzip.decompress(path.read_bytes()))
        return out
    return path


def run_tshark(path: Path) -> str:
    """tshark's field output for `path` (cached)."""
    key = hashlib.sha256()
    key.update(path.read_bytes())
    key.update(tshark_version().encode())
    key.update("\t".join(FIELDS).encode())
    cached = _cache_dir() / (key.hexdigest()[:32] + ".tsv")
    if cached.exists():
        return cached.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        src = _readable_copy(path, Path(tmp))
        cmd = ["tshark", "-n", "-r", str(src), "-T", "fields", "-E", "separator=/t",
               "-E", "occurrence=f"]
        for f in FIELDS:
            cmd += ["-e", f]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    text = proc.stdout
    tmpname = cached.with_suffix(".tmp%d" % os.getpid())
    tmpname.write_text(text)
    tmpname.replace(cached)
    return text


@dataclass
class Oracle:
    """tshark's values per frame number (absent fields are missing from the dicts)."""

    rows: dict[int, dict[str, str]]


def parse(text: str) -> Oracle:
    rows: dict[int, dict[str, str]] = {}
    names = ["frame", "stream", "seq", "ack", "window_size"] + list(FLAGS) + list(VALUES)
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < len(names) or not parts[0].isdigit():
            continue
        rows[int(parts[0])] = {n: v for n, v in zip(names[1:], parts[1:]) if v != ""}
    return Oracle(rows)


def _ns(text: str) -> int:
    """A tshark relative time ("0.000123000") as integer nanoseconds."""
    neg = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    ns = int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    return -ns if neg else ns


def ours(path: Path, mode: str = "wireshark") -> dict[int, dict[str, object]]:
    """The engine's values per frame number, in tshark's terms."""
    from tcpscope.analysis.annotation import FLAG_BIT
    from tcpscope.capture.errors import CaptureError
    from tcpscope.pipeline import Options, Pipeline

    rows: dict[int, dict[str, object]] = {}
    try:
        for chunk in Pipeline([], Options(mode=mode, states=False)).read(path):
            _collect(rows, chunk.annotations, FLAG_BIT)
    except CaptureError:
        pass  # a format tcpscope does not read: every tshark frame disagrees
    return rows


def _collect(rows: dict[int, dict[str, object]], ann: np.ndarray, FLAG_BIT: dict) -> None:
    if True:
        tcp = np.flatnonzero(ann["stream"] >= 0)
        for i in tcp:
            a = ann[i]
            d: dict[str, object] = {
                "stream": int(a["stream"]),
                "seq": int(a["rel_seq"]) & 0xFFFFFFFF,
                "ack": int(a["rel_ack"]) & 0xFFFFFFFF,
                "window_size": int(a["win_scaled"]),
            }
            flags = int(a["flags"])
            for f in FLAGS:
                if flags & (1 << FLAG_BIT[f]):
                    d[f] = True
            if a["dup_ack_num"]:
                d["duplicate_ack_num"] = int(a["dup_ack_num"])
            if a["bytes_in_flight"] >= 0:
                d["bytes_in_flight"] = int(a["bytes_in_flight"])
                d["push_bytes_sent"] = int(a["push_bytes_sent"])
            if a["ack_rtt_ns"] != -1:
                d["ack_rtt"] = int(a["ack_rtt_ns"])
            if a["acked_frame"]:
                d["acks_frame"] = int(a["acked_frame"])
            if a["irtt_ns"] != -1:
                d["initial_rtt"] = int(a["irtt_ns"])
            rows[int(a["frame"])] = d


def _theirs(row: dict[str, str]) -> dict[str, object]:
    d: dict[str, object] = {}
    for k, v in row.items():
        if k in FLAGS:
            d[k] = True
        elif k in ("ack_rtt", "initial_rtt"):
            d[k] = _ns(v)
        else:
            try:
                d[k] = int(v)
            except ValueError:
                d[k] = v
    return d


@dataclass
class FileResult:
    name: str
    frames: int = 0  #: frames where either side has TCP
    agree: Counter = field(default_factory=Counter)  #: per field, frames that agree
    diffs: list[tuple[int, str, object, object]] = field(default_factory=list)  #: (frame, field, tshark, ours)


def compare(name: str, oracle: Oracle, mine: dict[int, dict[str, object]]) -> FileResult:
    res = FileResult(name)
    theirs_all = {f: _theirs(r) for f, r in oracle.rows.items() if "stream" in r}
    frames = sorted(set(theirs_all) | set(mine))
    res.frames = len(frames)
    for fr in frames:
        t = theirs_all.get(fr, {})
        m = mine.get(fr, {})
        for f in COMPARED:
            tv, mv = t.get(f), m.get(f)
            if tv == mv:
                res.agree[f] += 1
            else:
                res.diffs.append((fr, f, tv, mv))
    return res


def analyse_file(path: Path, mode: str = "wireshark") -> FileResult:
    oracle = parse(run_tshark(path))
    return compare(path.name, oracle, ours(path, mode))


def run_many(paths: list[Path], mode: str = "wireshark", jobs: int = 4) -> list[FileResult]:
    # tshark runs in parallel (it is the slow part); the engine in this thread.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        texts = list(pool.map(run_tshark, paths))
    return [compare(p.name, parse(t), ours(p, mode)) for p, t in zip(paths, texts)]


def table(results: list[FileResult], fields: tuple[str, ...] = COMPARED) -> str:
    total = sum(r.frames for r in results)
    lines = [f"{'field':28} {'agree':>9} / {total:<9} {'%':>8}"]
    for f in fields:
        a = sum(r.agree[f] for r in results)
        pct = 100.0 * a / total if total else 100.0
        lines.append(f"{f:28} {a:>9} / {total:<9} {pct:8.3f}")
    lines.append("")
    lines.append(f"{'file':62} {'frames':>7} {'all fields %':>13}")
    for r in sorted(results, key=lambda r: r.name):
        cells = r.frames * len(fields)
        ok = sum(r.agree[f] for f in fields)
        pct = 100.0 * ok / cells if cells else 100.0
        lines.append(f"{r.name[:62]:62} {r.frames:>7} {pct:13.3f}")
    bad = [r for r in results if r.diffs]
    if bad:
        lines.append("")
        lines.append("files with disagreements (frames, differing fields):")
        for r in sorted(bad, key=lambda r: -len(r.diffs)):
            c = Counter(f for _, f, _, _ in r.diffs)
            lines.append(f"  {r.name}: {r.frames} frames; " + ", ".join(f"{k}={v}" for k, v in c.most_common()))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    mode = "wireshark"
    if argv and argv[0].startswith("--mode="):
        mode = argv.pop(0).split("=", 1)[1]
    verbose = False
    if argv and argv[0] == "-v":
        verbose = True
        argv.pop(0)
    paths = [Path(a) for a in argv]
    if not paths:
        from tests.conftest import corpus_files, fixture_files

        paths = corpus_files() + fixture_files()
    results = run_many(paths, mode)
    print(table(results))
    if verbose:
        for r in results:
            for fr, f, tv, mv in r.diffs[:200]:
                print(f"{r.name}\t{fr}\t{f}\ttshark={tv}\tours={mv}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
