"""tshark's Follow TCP Stream as the oracle of `tcpscope follow`: run, parse, compare.

Used by tests/test_follow.py and by `python -m tests.follow_oracle FILE...` (agreement per file
and the differing streams, for development).

tshark runs once per file with one ``-z follow,tcp,raw,N`` per stream, default preferences.
Its output is cached by the file's content, the tshark version and the stream list (in
$TCPSCOPE_ORACLE_CACHE, default ~/.cache/tcpscope/tshark), like tests/tshark_oracle.py.

tshark's raw follow prints one hex line per segment it delivers, the second node's lines
indented by a tab; Node 0 is the source of the stream's first packet. A gap is printed as the
hex of the text ``[N bytes missing in capture file]`` and a NUL, inside the data.
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.tshark_oracle import _cache_dir, _readable_copy, tshark_version

_MISSING = re.compile(rb"^\[(\d+) bytes missing in capture file\]\x00$")
_BATCH = 200  # streams per tshark run (each -z follow is a tap over the whole file)


@dataclass
class TsharkSide:
    """One direction as tshark's follow shows it: data lines and gap marks, in order."""

    endpoint: str = ""
    tokens: list[tuple[str, bytes | int]] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(t[1] for t in self.tokens if t[0] == "data")  # type: ignore[misc]

    @property
    def gaps(self) -> list[int]:
        return [t[1] for t in self.tokens if t[0] == "gap"]  # type: ignore[misc]


@dataclass
class TsharkStream:
    stream: int
    nodes: tuple[TsharkSide, TsharkSide]
    order: list[int] = field(default_factory=list)  # node of each data line, in output order


def _run(path: Path, streams: list[int]) -> str:
    key = hashlib.sha256()
    key.update(path.read_bytes())
    key.update(tshark_version().encode())
    key.update(("follow-raw:" + ",".join(map(str, streams))).encode())
    cached = _cache_dir() / (key.hexdigest() + ".follow")
    if cached.exists():
        return cached.read_text()
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        readable = _readable_copy(path, Path(tmp))
        for i in range(0, len(streams), _BATCH):
            args = ["tshark", "-n", "-q", "-r", str(readable)]
            for s in streams[i : i + _BATCH]:
                args += ["-z", f"follow,tcp,raw,{s}"]
            parts.append(subprocess.run(args, capture_output=True, text=True, check=False).stdout)
    text = "".join(parts)
    cached.write_text(text)
    return text


def parse(text: str) -> dict[int, TsharkStream]:
    out: dict[int, TsharkStream] = {}
    cur: TsharkStream | None = None
    for line in text.splitlines():
        if line.startswith("====="):
            cur = None
            continue
        if line.startswith("Filter: tcp.stream eq "):
            n = int(line.rsplit(" ", 1)[1])
            cur = out[n] = TsharkStream(n, (TsharkSide(), TsharkSide()))
            continue
        if cur is None or line.startswith("Follow:") or not line.strip():
            continue
        if line.startswith("Node 0: ") or line.startswith("Node 1: "):
            cur.nodes[int(line[5])].endpoint = line[8:]
            continue
        node = 1 if line.startswith("\t") else 0
        raw = bytes.fromhex(line.strip())
        m = _MISSING.match(raw)
        if m:
            cur.nodes[node].tokens.append(("gap", int(m.group(1))))
        else:
            cur.nodes[node].tokens.append(("data", raw))
            cur.order.append(node)
    return out


def tshark_follow(path: Path, streams: list[int]) -> dict[int, TsharkStream]:
    """tshark's follow of each stream of `path` (cached)."""
    if not streams:
        return {}
    return parse(_run(path, sorted(streams)))


if __name__ == "__main__":  # pragma: no cover
    from tests.test_follow import agreement_report

    for arg in sys.argv[1:]:
        print(agreement_report(Path(arg)))
