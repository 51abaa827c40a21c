"""Capture filters against tcpdump itself: the frames kept, their lines, and ``-w``.

For every capture of ../shared/captures/files/ and fixtures/ and every expression
of EXPRESSIONS, ``tcpdump -nn -# -r FILE EXPR`` and ``tcpscope read FILE EXPR``
(the pipeline with `Input(capture_filter=EXPR)` and the listing) must keep the
same number of frames, and print the same line for each TCP frame (tcpdump's
-# counts printed packets; tcpscope's are the file's frame numbers, so the
k-th line of one is the k-th of the other). An expression that does not
compile for a capture's link type must fail in both. Files whose link type or
snapshot length changes inside (pcapng) are left out: tcpdump stops reading there;
so are those tcpdump reads nothing of (a pcapng without interfaces).

``-w``: for every capture and the expressions of WRITE_EXPRESSIONS, the frames
``tcpdump -r FILE -w - EXPR`` writes equal those tcpscope's writer writes
(timestamp, lengths, bytes), frame for frame; tcpdump and tshark read a
pcapng tcpscope wrote back.
"""
from __future__ import annotations

import io
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import corpus_files, fixture_files, require_tool
from read_cases import listing_frames
import re
from test_tcpdump_agreement import KNOWN_DIFFERENCES, _decompressed, _known

from tcpscope import pipeline
from tcpscope.capture import open_capture
from tcpscope.capture.bpf import FilterError
from tcpscope.capture.errors import CaptureError
from tcpscope.capture.subset import SubsetWriter
from tcpscope.present.tcpdump import TcpdumpListing, TcpdumpOptions
from tcpscope.wire.record import KIND

pytestmark = pytest.mark.oracle

EXPRESSIONS = [
    "tcp", "udp", "ip", "ip6", "tcp and ip6", "not tcp",
    "host 10.0.0.1", "src host 127.0.0.1", "dst host 192.168.1.1", "host ::1",
    "net 10.0.0.0/8", "net 192.168.0.0/16", "src net 172.16.0.0/12", "net fe80::/10",
    "port 80", "tcp port 443", "src port 5000", "dst port 80 or dst port 8080",
    "portrange 1-1023", "tcp portrange 5000-6000", "tcp dst portrange 80-90",
    "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[tcpflags] & tcp-rst != 0", "tcp[tcpflags] & tcp-fin != 0 and not tcp port 22",
    "tcp[13] = 0x18", "tcp[12] & 0xf0 > 0x50", "ip[8] < 64", "ip[6:2] & 0x1fff != 0",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "vlan", "vlan and tcp", "mpls", "pppoes", "greater 1000", "less 80",
    "tcp and (port 80 or port 443) and not host 10.0.0.2",
    "ip and tcp and len > 100", "ether host 00:00:00:00:00:00", "ip proto 6",
]
WRITE_EXPRESSIONS = ["tcp", "port 80", "tcp[tcpflags] & tcp-syn != 0", "not tcp", "ip6"]


@dataclass
class Agreement:
    pairs: int = 0            # (file, expression) compared
    frames_equal: int = 0     # pairs where both kept the same number of frames
    tcp_lines: int = 0        # TCP lines compared
    tcp_equal: int = 0
    both_failed: int = 0      # the expression compiles for neither
    skipped_files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    written: int = 0          # -w pairs compared
    written_frames: int = 0
    written_problems: list[str] = field(default_factory=list)


def _tcpdump_stops(path: Path) -> bool:
    """Does tcpdump give up on this capture: at an interface whose link type or snapshot
    length differs from the first one's, or at once (a pcapng with no interface)?"""
    proc = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True,
                          timeout=120)
    return b"an interface has" in proc.stderr or (proc.returncode != 0 and not proc.stdout)


_NUMBERED = re.compile(r"^ *(\d+)  ")


def _by_frame(text: str) -> dict[int, str]:
    """tcpscope's -# listing by frame number (the file's numbers: they skip frames the
    filter left out), continuation lines joined to their frame."""
    frames: dict[int, str] = {}
    current = 0
    for line in text.split("\n"):
        m = _NUMBERED.match(line)
        if m and int(m.group(1)) > current:
            current = int(m.group(1))
            frames[current] = line[m.end():]
        elif current and line:
            frames[current] += "\n" + line
    return frames


def _ours(path: Path, expr: str) -> tuple[dict[int, str], list[int], set[int]] | str:
    """Our -# listing by frame, the frames kept in order, and those that are TCP; or the
    error message."""
    out = io.StringIO()
    listing = TcpdumpListing(TcpdumpOptions(number=True), out)
    kept: list[int] = []
    tcp: set[int] = set()

    class Frames:
        def feed(self, chunk: pipeline.Chunk) -> None:
            numbers = chunk.batch.frame_numbers
            kept.extend(numbers.tolist())
            tcp.update(numbers[chunk.records["kind"] == KIND["TCP"]].tolist())

        def finish(self, result: pipeline.Result) -> None:
            pass

    try:
        pipeline.run(pipeline.Input((path,), capture_filter=expr), [listing, Frames()],
                     pipeline.Options(analyse=False, states=False))
    except FilterError as exc:
        return str(exc)
    return _by_frame(out.getvalue()), kept, tcp


def _tcpdump(path: Path, expr: str) -> tuple[str, int]:
    env = dict(os.environ, TZ="UTC")
    proc = subprocess.run(["tcpdump", "-nn", "-#", "-r", str(path), expr], env=env,
                          capture_output=True, timeout=120)
    return proc.stdout.decode("utf-8", "replace"), proc.returncode


def _frames(path: Path | bytes) -> list[tuple[int, int, bytes]]:
    src = io.BytesIO(path) if isinstance(path, bytes) else path
    out = []
    with open_capture(src) as cap:
        for batch in cap:
            for f in batch.frames():
                out.append((f.ts_ns // 1000, f.origlen, f.data))
    return out


def _same_but_known_timestamps(name: str, theirs: list, ours: list) -> bool:
    """The same frames but for timestamps of a capture whose timestamps are a known
    difference (test_tcpdump_agreement.KNOWN_DIFFERENCES: a fraction of 10^9 or more,
    which libpcap keeps raw and tcpscope carries into the seconds)."""
    return any(f == name for f, *_ in KNOWN_DIFFERENCES) and len(theirs) == len(ours) and \
        all(t[1:] == o[1:] for t, o in zip(theirs, ours))


@pytest.fixture(scope="module")
def agreement(tmp_path_factory) -> Agreement:
    require_tool("tcpdump")
    files = corpus_files() + fixture_files()
    if not files:
        pytest.skip("no captures")
    tmp = tmp_path_factory.mktemp("bpf")
    res = Agreement()
    for path in files:
        try:
            with open_capture(path):
                pass
        except CaptureError:
            continue
        plain = _decompressed(path, tmp)
        if _tcpdump_stops(plain):
            res.skipped_files.append(path.name)
            continue
        for expr in EXPRESSIONS:
            text, code = _tcpdump(plain, expr)
            ours = _ours(path, expr)
            res.pairs += 1
            if isinstance(ours, str):
                if code != 0 and not text:
                    res.both_failed += 1
                else:
                    res.problems.append(f"{path.name} {expr!r}: tcpscope: {ours}")
                continue
            if code != 0 and not text:
                res.problems.append(f"{path.name} {expr!r}: tcpdump failed, tcpscope did not")
                continue
            listing, kept, tcp = ours
            theirs = listing_frames(text)
            if len(theirs) == len(kept):
                res.frames_equal += 1
            else:
                res.problems.append(f"{path.name} {expr!r}: tcpdump kept {len(theirs)} frames, "
                                    f"tcpscope {len(kept)}")
                continue
            for k, frame in enumerate(kept, 1):
                if frame in tcp:
                    res.tcp_lines += 1
                    if listing.get(frame) == theirs.get(k) or _known(path.name, frame, "-nn"):
                        res.tcp_equal += 1
                    elif len(res.problems) < 50:
                        res.problems.append(f"{path.name} {expr!r} frame {frame}:\n  tcpdump:  "
                                            f"{theirs.get(k)!r}\n  tcpscope: {listing.get(frame)!r}")
        for expr in WRITE_EXPRESSIONS:
            proc = subprocess.run(["tcpdump", "-r", str(plain), "-w", "-", expr],
                                  capture_output=True, timeout=120)
            if proc.returncode != 0:
                continue
            buf = io.BytesIO()
            writer = SubsetWriter(buf)
            try:
                pipeline.run(pipeline.Input((path,), capture_filter=expr), [writer],
                             pipeline.Options(analyse=False, states=False))
            except FilterError:
                continue
            theirs_w, ours_w = _frames(proc.stdout), _frames(buf.getvalue())
            res.written += 1
            res.written_frames += len(ours_w)
            if theirs_w != ours_w and not _same_but_known_timestamps(path.name, theirs_w,
                                                                     ours_w):
                res.written_problems.append(f"{path.name} {expr!r}: {len(theirs_w)} frames "
                                            f"from tcpdump -w, {len(ours_w)} from tcpscope")
    return res


def test_capture_filter_agreement(agreement: Agreement, capsys) -> None:
    a = agreement
    with capsys.disabled():
        print(f"\ncapture filters vs tcpdump: {len(EXPRESSIONS)} expressions, {a.pairs} "
              f"(file, expression) pairs: frames kept equal in {a.frames_equal}, both refused "
              f"{a.both_failed}; TCP lines equal {a.tcp_equal}/{a.tcp_lines}; "
              f"-w: {a.written} pairs, {a.written_frames} frames; "
              f"captures tcpdump stops reading (interfaces differ, none) left out: "
              f"{len(a.skipped_files)}")
    assert len(EXPRESSIONS) >= 30
    assert a.pairs and a.tcp_lines
    assert not a.problems, "\n".join(a.problems[:20])
    assert a.frames_equal + a.both_failed == a.pairs


def test_written_frames_equal_tcpdump_w(agreement: Agreement) -> None:
    assert agreement.written, "no -w comparison ran"
    assert not agreement.written_problems, "\n".join(agreement.written_problems[:20])


def test_tcpdump_and_tshark_read_a_written_pcapng(tmp_path: Path) -> None:
    require_tool("tcpdump")
    tshark = require_tool("tshark")
    src = Path(__file__).resolve().parent.parent / "fixtures" / "lo_ipv4.pcap"
    out = tmp_path / "subset.pcapng"
    writer = SubsetWriter(out)
    pipeline.run(pipeline.Input((src,), capture_filter="tcp[tcpflags] & tcp-syn != 0"),
                 [writer], pipeline.Options(analyse=False, states=False))
    assert writer.frames == 2
    td = subprocess.run(["tcpdump", "-nn", "-r", str(out)], capture_output=True, timeout=60)
    assert td.returncode == 0 and td.stdout.decode().count("Flags [S") == 2
    ts = subprocess.run([tshark, "-r", str(out), "-T", "fields", "-e", "frame.len"],
                        capture_output=True, timeout=60)
    assert ts.returncode == 0 and ts.stdout.decode().split() == ["74", "74"]
    assert _frames(out) == [f for f in _frames(src) if f[2][47] & 0x02]


def test_a_bad_expression_is_tcpdumps_message_one_line_exit_2(tmp_path: Path) -> None:
    import sys

    src = Path(__file__).resolve().parent.parent / "fixtures" / "lo_ipv4.pcap"
    res = subprocess.run([sys.executable, "-m", "tcpscope", "read", str(src), "tcp", "portt",
                          "80"], capture_output=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.decode() == "tcpscope: can't parse filter expression: syntax error\n"
    assert res.stdout == b""


def test_written_output_is_atomic(tmp_path: Path) -> None:
    """A run that fails leaves no file (and no temporary) behind."""
    src = Path(__file__).resolve().parent.parent / "fixtures" / "lo_ipv4.pcap"
    out = tmp_path / "x.pcap"
    writer = SubsetWriter(out)

    class Boom:
        def feed(self, chunk: pipeline.Chunk) -> None:
            raise RuntimeError("stop")

        def finish(self, result: pipeline.Result) -> None:
            pass

    with pytest.raises(RuntimeError):
        try:
            pipeline.run(src, [writer, Boom()], pipeline.Options(analyse=False, states=False))
        except BaseException:
            writer.abort()
            raise
    assert list(tmp_path.iterdir()) == []
