"""Several captures read as one: mergecap's order, frame numbers, files, and the same answers.

A capture cut by ``editcap -c`` and rotated by ``tcpdump -C`` gives, read as the
set of its pieces, the same ``conns`` and ``packets`` as the whole file (the
packets' ``file`` / ``file_frame`` columns aside); the order of merged frames
is mergecap's own, frame for frame.
"""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, FIXTURES, require_tool

from tcpscope import pipeline
from tcpscope.capture import PcapngWriter, open_capture, write_pcap
from tcpscope.capture.inputs import expand_inputs, open_inputs
from tcpscope.present.packets import write_packets

T0 = 1_700_000_000_000_000_000


def _pcap(path: Path, stamps: list[int], tag: int) -> Path:
    write_pcap(path, [(T0 + 1000 * t, bytes([tag, i]) * 30) for i, t in enumerate(stamps)], 1)
    return path


def _read(paths: list, **kw) -> list[tuple[int, int, int, int, bytes]]:
    """(number, ts, source, source frame, bytes) of every frame read."""
    out = []
    with open_inputs(paths, **kw) as cap:
        for b in cap:
            src = b.source.tolist() if b.source is not None else [0] * len(b)
            sfr = b.source_frame.tolist() if b.source_frame is not None else \
                b.frame_numbers.tolist()
            for k, f in enumerate(b.frames()):
                out.append((f.number, (f.ts_ns - T0) // 1000, src[k], sfr[k], f.data[:2]))
    return out


def test_merge_follows_time_first_file_wins_ties_and_keeps_file_order(tmp_path: Path) -> None:
    a = _pcap(tmp_path / "a.pcap", [0, 10, 20, 15, 40], 1)     # 15 after 20: kept in order
    b = _pcap(tmp_path / "b.pcap", [5, 10, 30], 2)
    got = _read([a, b])
    assert [(t, s, fr) for _, t, s, fr, _ in got] == [
        (0, 0, 1), (5, 1, 1), (10, 0, 2), (10, 1, 2), (20, 0, 3), (15, 0, 4), (30, 1, 3),
        (40, 0, 5)]
    assert [n for n, *_ in got] == list(range(1, 9))


def test_merge_equals_mergecap(tmp_path: Path) -> None:
    """The same order as mergecap, where no two files have a frame at the same instant
    (on a tie tcpscope takes the file given first, mergecap the last one)."""
    mergecap = require_tool("mergecap")
    a = _pcap(tmp_path / "a.pcap", [0, 3, 3, 9, 2, 12], 1)
    b = _pcap(tmp_path / "b.pcap", [1, 5, 8, 8, 20], 2)
    c = _pcap(tmp_path / "c.pcap", [4, 4, 11], 3)
    out = tmp_path / "m.pcap"
    subprocess.run([mergecap, "-F", "pcap", "-w", str(out), str(a), str(b), str(c)], check=True)
    with open_capture(out) as cap:
        theirs = [((f.ts_ns - T0) // 1000, f.data[:2]) for f in cap.frames()]
    assert [(t, d) for _, t, _, _, d in _read([a, b, c])] == theirs


def test_merge_in_small_batches_is_the_same(tmp_path: Path) -> None:
    from tcpscope.capture.merge import MergedReader

    a = _pcap(tmp_path / "a.pcap", list(range(0, 400, 2)), 1)
    b = _pcap(tmp_path / "b.pcap", list(range(1, 400, 3)), 2)
    whole = _read([a, b])
    got = []
    with MergedReader([open_capture(a, batch_frames=7), open_capture(b, batch_frames=5)],
                      batch_frames=11) as cap:
        for batch in cap:
            assert len(batch) <= 11
            got.extend((f.number, (f.ts_ns - T0) // 1000, f.data[:2]) for f in batch.frames())
    assert got == [(n, t, d) for n, t, _, _, d in whole]


def test_identical_interfaces_merge_others_stay_apart(tmp_path: Path) -> None:
    a = _pcap(tmp_path / "a.pcap", [0, 2], 1)
    b = _pcap(tmp_path / "b.pcap", [1], 2)
    c = tmp_path / "c.pcapng"
    with PcapngWriter(c) as w:
        i = w.add_interface(1, "eth1")
        w.write(T0 + 3000, i, b"\x03\x00" * 30)
    with open_inputs([a, b, c]) as cap:
        ifaces = [int(x) for batch in cap for x in batch.iface]
        assert ifaces == [0, 0, 0, 1]
        assert [i.name for i in cap.interfaces] == [None, "eth1"]


def test_directories_globs_and_non_captures(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    _pcap(d / "x1.pcap", [0], 1)
    _pcap(d / "x2.pcap", [1], 2)
    (d / "README").write_text("notes")
    with open_inputs([d]) as cap:
        assert sum(len(b) for b in cap) == 2
        assert [name for name, _ in cap.skipped] == [str(d / "README")]
    assert [p for p, _ in expand_inputs([str(d / "x*.pcap")])] == [str(d / "x1.pcap"),
                                                                     str(d / "x2.pcap")]


def test_capture_filter_and_count_keep_frame_numbers(tmp_path: Path) -> None:
    src = FIXTURES / "lo_ipv4.pcap"
    got = _read([src], capture_filter="tcp[tcpflags] & tcp-push != 0", count=3)
    assert [n for n, *_ in got] == [4, 6, 8]


def test_damage_names_each_file(tmp_path: Path) -> None:
    good = _pcap(tmp_path / "good.pcap", [0, 1], 1)
    data = _pcap(tmp_path / "tmp.pcap", [2, 3, 4], 2).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])
    res = subprocess.run([sys.executable, "-m", "tcpscope", "read", str(good), str(cut)],
                         capture_output=True, timeout=60)
    assert res.returncode == 0
    assert res.stdout.decode().count("\n") == 4
    err = res.stderr.decode()
    assert err.startswith(f"tcpscope: {cut}: capture damaged") and err.count("\n") == 1


# ---------------------------------------------------------------------------
# the same answers as the whole capture

def _whole(tmp_path: Path) -> Path:
    src = CORPUS / "zeek__echo-connections.pcap.gz"
    if not src.exists():
        pytest.skip("shared corpus not found")
    out = tmp_path / "whole.pcap"
    out.write_bytes(gzip.decompress(src.read_bytes()))
    return out


def _conns(source) -> list[dict]:
    from tcpscope.present.conns import collect, format_jsonl

    return [json.loads(line) for line in format_jsonl(collect(source)).splitlines()]


def _packets(source) -> list[dict]:
    buf = io.BytesIO()
    write_packets(source, buf, "jsonl")
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    for r in rows:
        r.pop("file", None)
        r.pop("file_frame", None)
    return rows


@pytest.mark.parametrize("cutter", ["editcap -c", "tcpdump -C"])
def test_pieces_give_the_whole_captures_answers(tmp_path: Path, cutter: str) -> None:
    whole = _whole(tmp_path)
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    if cutter == "editcap -c":
        subprocess.run([require_tool("editcap"), "-c", "2000", str(whole),
                        str(pieces / "part.pcap")], check=True)
    else:
        subprocess.run([require_tool("tcpdump"), "-r", str(whole), "-w", str(pieces / "rot"),
                        "-C", "1", "-Z", "root"], check=True, capture_output=True)
    files = sorted(pieces.iterdir())
    assert len(files) >= 3, files
    inp = pipeline.Input(tuple(files))
    assert _conns(inp) == _conns(whole)
    assert _packets(inp) == _packets(whole)
    with open_inputs(files) as cap:
        origin = [(int(s), int(f)) for b in cap for s, f in zip(b.source, b.source_frame)]
    sizes = []
    for p in files:
        with open_capture(p) as c:
            sizes.append(sum(len(b) for b in c))
    # each frame keeps its file and its number there
    assert origin == [(i, k) for i, n in enumerate(sizes) for k in range(1, n + 1)]


def test_packets_of_several_files_name_them(tmp_path: Path) -> None:
    a = FIXTURES / "lo_ipv4.pcap"
    res = subprocess.run([sys.executable, "-m", "tcpscope", "packets", str(a), str(a),
                          "--format", "csv", "-c", "3"], capture_output=True, timeout=60)
    lines = res.stdout.decode().splitlines()
    assert lines[0].endswith(",file,file_frame")
    assert [ln.split(",")[0] for ln in lines[1:]] == ["1", "2", "3"]
    assert [ln.split(",")[-2:] for ln in lines[1:]] == [[str(a), "1"], [str(a), "1"],
                                                        [str(a), "2"]]
