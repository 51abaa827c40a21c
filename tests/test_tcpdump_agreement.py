"""`tcpscope read` against tcpdump itself, line by line, on every capture we have.

For each capture of ../shared/captures/files/ and of fixtures/, and for each
flag set, tcpdump (``TZ=UTC tcpdump -nn -# FLAGS -r FILE``, on a decompressed
copy when the file is compressed) and tcpscope (the same flags, reading the
file as it is) print their listings. Lines are matched by frame number (``-#``);
a packet's continuation lines (``-v`` output, text payload lines) are joined to
its first line. Every frame that tcpscope's dissector calls TCP and that
tcpdump printed is compared. tcpdump gives up on a pcapng file at the first
interface whose link type (or snapshot length) differs from the first one's;
such a file is also split into one pcapng per link type (written by tcpscope's
own writer), and both tools read each part, so those frames are compared too.

The test prints a table of agreement per file and per flag set and fails on
any difference not listed in KNOWN_DIFFERENCES, each of which is explained in
docs/differences.md ("tcpdump (read)").
"""
from __future__ import annotations

import gzip
import io
import lzma
import os
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import CORPUS, corpus_files, fixture_files, require_tool
from read_cases import listing_frames

from tcpscope.capture.errors import CaptureError
from tcpscope.capture import open_capture
from tcpscope.capture.writer import PcapngWriter
from tcpscope.wire.linktypes import linktype_name
from tcpscope import pipeline
from tcpscope.present.tcpdump import TcpdumpListing, TcpdumpOptions
from tcpscope.wire.record import KIND

pytestmark = pytest.mark.oracle

#: The flag sets compared (tcpdump's flags; tcpscope read takes the same ones).
FLAG_SETS: dict[str, list[str]] = {
    "-nn": [],
    "-nn -v": ["-v"],
    "-nn -vv": ["-vv"],
    "-nn -S": ["-S"],
    "-nn -tt": ["-tt"],
    "-nn -ttt": ["-ttt"],
    "-nn -tttt": ["-tttt"],
    "-nn -e": ["-e"],
    "-nn -q": ["-q"],
    "-nn -e -q": ["-e", "-q"],
    "-nn -x": ["-x"],
    "-nn -xx": ["-xx"],
    "-nn -X": ["-X"],
    "-nn -XX": ["-XX"],
    "-nn -A": ["-A"],
    "-nn -AA": ["-AA"],
    "-nn --nano": ["--nano"],
    "-nn --nano -ttt": ["--nano", "-ttt"],
}

_ALL = frozenset(FLAG_SETS)

#: (file name, frame, flag sets it affects, reason): the only differences allowed.
#: Each is explained in docs/differences.md, "tcpdump (read)".
KNOWN_DIFFERENCES: list[tuple[str, int, frozenset[str], str]] = [
    ("the-tcpdump-group__timestamp_invalid_nano.pcap", 2,
     _ALL - {"-nn -ttt", "-nn --nano -ttt"},
     "pcap record with a nanosecond fraction >= 10^9: tcpdump prints the raw fraction "
     "(17:16:10.1000000), tcpscope carries the excess into the seconds (17:16:11.000000); "
     "the delta from frame 1 happens to agree"),
    ("the-tcpdump-group__timestamp_invalid_nano.pcap", 3, _ALL,
     "pcap record with a nanosecond fraction >= 10^9 (see frame 2)"),
]

def _decompressed(path: Path, tmp: Path) -> Path:
    """tcpdump reads no compressed files: a plain copy for it (cached per session)."""
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix)
    if path.suffix == ".zst":
        import zstandard

        def opener(p, mode="rb"):  # noqa: E306 - small local adapter
            return zstandard.ZstdDecompressor().stream_reader(open(p, "rb"))
    if opener is None:
        return path
    out = tmp / path.stem
    if not out.exists():
        with opener(path, "rb") as src:
            out.write_bytes(src.read())
    return out


def _tcpdump(tcpdump: str, path: Path, flags: list[str]) -> str:
    env = dict(os.environ, TZ="UTC")
    proc = subprocess.run([tcpdump, "-nn", "-#", *flags, "-r", str(path)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
    return proc.stdout.decode("utf-8", "replace")


def _options(flags: list[str]) -> TcpdumpOptions:
    def count(letter: str) -> int:
        return sum(f.count(letter) for f in flags if f.startswith(f"-{letter}"))

    dump = 2 + count("X") if count("X") else count("x") if count("x") else \
        4 + count("A") if count("A") else 0
    return TcpdumpOptions(verbose=count("v"), absolute="-S" in flags, tstyle=count("t"),
                          number=True, link="-e" in flags, quick="-q" in flags, dump=dump,
                          nano="--nano" in flags)


class _TcpFrames:
    """A pipeline consumer that notes the frames the dissector calls TCP."""

    def __init__(self) -> None:
        self.frames: set[int] = set()

    def feed(self, chunk: pipeline.Chunk) -> None:
        tcp = chunk.batch.frame_numbers[chunk.records["kind"] == KIND["TCP"]]
        self.frames.update(tcp.tolist())

    def finish(self, result: pipeline.Result) -> None:
        pass


def _tcpscope(path: Path, flag_sets: dict[str, list[str]]) -> tuple[dict[str, str], set[int]]:
    """tcpscope's listing per flag set (one run of the pipeline), and the frames it calls TCP."""
    outs = {name: io.StringIO() for name in flag_sets}
    listings = [TcpdumpListing(_options(flags), outs[name]) for name, flags in flag_sets.items()]
    tcp = _TcpFrames()
    pipeline.run(path, [*listings, tcp], pipeline.Options(analyse=False, states=False))
    return {name: out.getvalue() for name, out in outs.items()}, tcp.frames


def _split_by_linktype(path: Path, tmp: Path) -> list[Path]:
    """One single-interface pcapng per link type of `path`, frames in file order.

    pcapng rather than pcap: libpcap reads pcap seconds as signed 32-bit values, which
    would turn the corpus's timestamps past 2038 into dates before 1970.
    """
    writers: dict[int, PcapngWriter] = {}
    parts: list[Path] = []
    try:
        with open_capture(path) as reader:
            for batch in reader:
                for i in range(len(batch)):
                    lt = int(batch.linktype[i])
                    writer = writers.get(lt)
                    if writer is None:
                        part = tmp / f"{path.name}.{linktype_name(lt)}.pcapng"
                        writer = writers[lt] = PcapngWriter(part)
                        writer.add_interface(lt)
                        parts.append(part)
                    try:
                        writer.write(int(batch.ts_ns[i]), 0, batch.frame_bytes(i),
                                     int(batch.origlen[i]))
                    except ValueError:  # a timestamp the file format cannot hold
                        pass
    finally:
        for writer in writers.values():
            writer.close()
    return parts


@dataclass
class FileResult:
    compared: int = 0
    equal: int = 0
    not_compared: int = 0
    known: int = 0
    known_frames: set[int] = field(default_factory=set)
    unexpected: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class Agreement:
    results: dict[str, dict[str, FileResult]]  # flag set -> file -> result
    skipped: list[tuple[str, str]]
    seconds: float


def _known(name: str, frame: int, flag_set: str) -> bool:
    return any(f == name and n == frame and flag_set in sets
               for f, n, sets, _ in KNOWN_DIFFERENCES)


@pytest.fixture(scope="module")
def agreement(tmp_path_factory) -> Agreement:
    tcpdump = require_tool("tcpdump")
    files = corpus_files() + fixture_files()
    if not files:
        pytest.skip("no captures: ../shared/captures/files/ and fixtures/ are both absent")
    if not corpus_files():
        warnings.warn(f"shared corpus not found at {CORPUS}: only fixtures/ are compared")
    tmp = tmp_path_factory.mktemp("tcpdump-input")
    saved_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    start = time.monotonic()
    results: dict[str, dict[str, FileResult]] = {name: {} for name in FLAG_SETS}
    skipped: list[tuple[str, str]] = []
    def compare(path: Path, label: str) -> bool:
        """Compare one capture under `label`; True if tcpdump left TCP frames unprinted."""
        try:
            ours, tcp = _tcpscope(path, FLAG_SETS)
        except CaptureError as exc:
            skipped.append((label, str(exc)))
            return False
        plain = _decompressed(path, tmp)
        for name, flags in FLAG_SETS.items():
            theirs = listing_frames(_tcpdump(tcpdump, plain, flags))
            mine = listing_frames(ours[name])
            res = results[name][label] = FileResult()
            for frame in sorted(tcp):
                if frame not in theirs:
                    res.not_compared += 1
                    continue
                res.compared += 1
                if mine.get(frame) == theirs[frame]:
                    res.equal += 1
                elif _known(label, frame, name):
                    res.known += 1
                    res.known_frames.add(frame)
                else:
                    res.unexpected.append((frame, theirs[frame], mine.get(frame, "")))
        return results["-nn"][label].not_compared > 0

    try:
        for path in files:
            if compare(path, path.name):
                for part in _split_by_linktype(path, tmp):
                    compare(part, f"{path.name} [{part.suffixes[-2].lstrip('.')} part]")
    finally:
        if saved_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved_tz
        time.tzset()
    return Agreement(results, skipped, time.monotonic() - start)


def _table(agreement: Agreement) -> str:
    out = io.StringIO()
    names = list(FLAG_SETS)
    files = sorted({f for per in agreement.results.values() for f in per})
    width = max((len(f) for f in files), default=10)
    out.write(f"\ntcpscope read vs tcpdump: TCP lines equal / compared "
              f"({agreement.seconds:.1f} s)\n")
    out.write(f"{'file':<{width}}  " + "  ".join(f"{n:>16}" for n in names) + "\n")
    for f in files:
        cells = []
        for n in names:
            r = agreement.results[n].get(f)
            cells.append(f"{r.equal:>7}/{r.compared:<7}" if r and r.compared else f"{'-':>16}")
        out.write(f"{f:<{width}}  " + "  ".join(f"{c:>16}" for c in cells) + "\n")
    overall_eq = overall_cmp = 0
    for n in names:
        per = agreement.results[n].values()
        eq = sum(r.equal for r in per)
        cmp_ = sum(r.compared for r in per)
        known = sum(r.known for r in per)
        unexpected = sum(len(r.unexpected) for r in per)
        notc = sum(r.not_compared for r in per)
        overall_eq += eq
        overall_cmp += cmp_
        out.write(f"{n:>8}: {eq}/{cmp_} equal ({100 * eq / max(cmp_, 1):.3f} %), "
                  f"{known} known differences, {unexpected} unexpected, "
                  f"{notc} TCP frames tcpdump did not print in a whole file\n")
    out.write(f" overall: {overall_eq}/{overall_cmp} equal "
              f"({100 * overall_eq / max(overall_cmp, 1):.3f} %)\n")
    for name, why in agreement.skipped:
        out.write(f"  not a capture either tool reads: {name} ({why})\n")
    return out.getvalue()


def test_agreement_table(agreement: Agreement, capsys) -> None:
    with capsys.disabled():
        print(_table(agreement))
    assert sum(r.compared for per in agreement.results.values() for r in per.values()) > 0


@pytest.mark.parametrize("flag_set", list(FLAG_SETS))
def test_no_unexpected_differences(agreement: Agreement, flag_set: str) -> None:
    problems = []
    for name, res in sorted(agreement.results[flag_set].items()):
        for frame, theirs, mine in res.unexpected[:3]:
            problems.append(f"{name} frame {frame}:\n  tcpdump:  {theirs!r}\n  tcpscope: {mine!r}")
    assert not problems, f"tcpscope read {flag_set} differs from tcpdump:\n" + "\n".join(problems)


def test_known_differences_still_differ(agreement: Agreement) -> None:
    """A listed difference that has disappeared must be removed from the list (and the doc)."""
    for name, frame, sets, _ in KNOWN_DIFFERENCES:
        for flag_set in sets:
            res = agreement.results[flag_set].get(name)
            if res is None or res.compared == 0:
                continue  # the capture is absent here
            assert frame in res.known_frames, (
                f"{name} frame {frame} now agrees with tcpdump {flag_set}: remove it from "
                "KNOWN_DIFFERENCES and docs/differences.md")
