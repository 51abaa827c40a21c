"""`tcpscope live`: the streaming reader, the helper's messages, and real loopback traffic.

Without root: the pipe reader is driven by a stand-in helper (a Python process
that writes a pcap in small, slow pieces, records cut anywhere), the helper's
statistics and error texts are parsed, and the pcapng writer is read back.

With root (``@pytest.mark.root``): tcpscope captures on lo while a bounded
server and client on 127.0.0.1 make K connections with known payloads; the
connections, handshakes, closes and bytes must be what was generated, the
packet counts what an independent tcpdump saw, and the ``-w`` file must read
back to what was shown. The missing-privilege message is checked by running
the real command as ``nobody`` with no capabilities (setpriv).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tcpscope.capture import PcapngWriter, open_capture, write_pcap
from tcpscope.capture.live import (
    CaptureStats,
    LiveCapture,
    LiveCaptureError,
    classify_helper_error,
    helper_command,
    parse_helper_stats,
)
from tcpscope.pipeline import analyze
from tcpscope.wire.builder import TCP, Ether, Frame, IPv4

ROOT = Path(__file__).resolve().parent.parent
TCPSCOPE = [sys.executable, "-m", "tcpscope"]

is_root = os.geteuid() == 0
needs_root = pytest.mark.skipif(not is_root, reason="needs root (live capture on lo)")
needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")


# ---------------------------------------------------------------------------
# A capture to stream: frames built with the project's builder
# ---------------------------------------------------------------------------


def sample_frames(n: int = 40) -> list[tuple[int, bytes]]:
    frames = []
    for i in range(n):
        data = Frame(Ether(), IPv4(id=i), TCP(sport=1234, dport=80, seq=1000 + 10 * i, ack=1,
                                              flags="PA")).with_payload(bytes([i]) * (i % 17)).build()
        frames.append((1_700_000_000_000_000_000 + i * 1000, data))
    return frames


def test_helper_command_is_tcpdump_writing_pcap_to_the_pipe():
    cmd = helper_command("lo", ["tcp", "port", "5000"], snaplen=256, buffer_kib=1024, count=5)
    assert cmd[:5] == ["tcpdump", "-i", "lo", "-w", "-"]
    for flag in ("-U", "--immediate-mode", "-n"):
        assert flag in cmd
    assert cmd[cmd.index("-s") + 1] == "256" and cmd[cmd.index("-c") + 1] == "5"
    assert cmd[-4:] == ["--", "tcp", "port", "5000"]
    assert helper_command("lo", netns="ns1")[:4] == ["ip", "netns", "exec", "ns1"]


def test_parse_helper_stats():
    text = ("tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 256 bytes\n"
            "1234 packets captured\n2468 packets received by filter\n7 packets dropped by kernel\n"
            "3 packets dropped by interface\n")
    stats = parse_helper_stats(text)
    assert stats == CaptureStats(1234, 2468, 7, 3)
    assert stats.dropped == 10
    assert parse_helper_stats("tcpdump: killed\n") == CaptureStats()
    assert CaptureStats().dropped is None
    assert parse_helper_stats("1 packet captured\n1 packet received by filter\n"
                              "0 packets dropped by kernel\n").captured == 1


@pytest.mark.parametrize("text, kind, words", [
    ("tcpdump: lo: You don't have permission to perform this capture on that device\n"
     "(socket: Operation not permitted)\n", "privilege", ["root", "CAP_NET_RAW", "CAP_NET_ADMIN"]),
    ("tcpdump: eth9: No such device exists\n(No such device exists)\n", "no_device",
     ["no such interface"]),
    ("tcpdump: can't parse filter expression: syntax error\n", "filter", ["bad filter"]),
    ("tcpdump: something else\n", "helper_failed", ["something else"]),
])
def test_helper_errors_become_one_line(text, kind, words):
    exc = classify_helper_error("lo", text)
    assert exc.kind == kind
    assert "\n" not in str(exc) and str(exc).startswith("lo: ")
    for w in words:
        assert w in str(exc)


STANDIN = r"""
import sys, time
data = open(sys.argv[1], "rb").read()
pieces = [int(x) for x in sys.argv[2].split(",")]
sys.stderr.write("tcpdump: listening on fake, link-type EN10MB (Ethernet)\n"); sys.stderr.flush()
out = sys.stdout.buffer
pos = 0
i = 0
while pos < len(data):
    n = pieces[i % len(pieces)]; i += 1
    out.write(data[pos:pos + n]); out.flush(); pos += n
    time.sleep(0.002)
sys.stderr.write(f"{sys.argv[3]} packets captured\n{sys.argv[3]} packets received by filter\n"
                 "0 packets dropped by kernel\n")
"""


@pytest.mark.parametrize("pieces", ["1", "7,3,100", "24,16,5000", "100000"])
def test_pipe_reader_delivers_every_frame_whatever_the_pieces(tmp_path, pieces):
    frames = sample_frames()
    path = tmp_path / "in.pcap"
    write_pcap(path, frames, linktype=1, nanosecond=True)
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    cmd = [sys.executable, str(script), str(path), pieces, str(len(frames))]
    got = []
    firsts = []
    with LiveCapture("fake", command=cmd) as cap:
        cap.wait_ready()
        for batch in cap.batches(tick=0.05):
            if len(batch):
                firsts.append(batch.first_frame)
            got.extend(batch.frames())
    assert [(f.ts_ns, f.data) for f in got] == frames
    assert [f.number for f in got] == list(range(1, len(frames) + 1))
    assert cap.stats == CaptureStats(len(frames), len(frames), 0, None)
    assert cap.interfaces[0].linktype == 1 and cap.interfaces[0].name == "fake"
    if pieces == "1":  # one byte at a time and slowly: frames come in many small batches
        assert len(firsts) > 3


def test_pipe_reader_is_prompt(tmp_path):
    """A lone packet reaches the caller within milliseconds, not when a chunk fills."""
    frames = sample_frames(1)
    path = tmp_path / "one.pcap"
    write_pcap(path, frames, linktype=1, nanosecond=True)
    script = tmp_path / "slow.py"
    script.write_text(
        "import sys, time\n"
        "d = open(sys.argv[1], 'rb').read()\n"
        "sys.stderr.write('listening on x\\n'); sys.stderr.flush()\n"
        "sys.stdout.buffer.write(d); sys.stdout.buffer.flush()\n"
        "time.sleep(5)\n")
    with LiveCapture("fake", command=[sys.executable, str(script), str(path)]) as cap:
        cap.wait_ready()
        t0 = time.monotonic()
        for batch in cap.batches(tick=0.05):
            if len(batch):
                latency = time.monotonic() - t0
                cap.stop()
                break
    assert latency < 1.0  # the helper keeps the pipe open for 5 s


def test_helper_that_cannot_start_raises_the_classified_error(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import sys\nsys.stderr.write('tcpdump: lo: You don\\'t have permission "
                      "to perform this capture on that device\\n'); sys.exit(1)\n")
    with LiveCapture("lo", command=[sys.executable, str(script)]) as cap:
        with pytest.raises(LiveCaptureError) as info:
            cap.wait_ready(timeout=5)
    assert info.value.kind == "privilege"


def test_missing_helper(tmp_path):
    with pytest.raises(LiveCaptureError) as info:
        LiveCapture("lo", tcpdump="tcpdump-that-does-not-exist")
    assert info.value.kind == "helper_missing"


def _epb_copy(tmp_path, frames, stats: CaptureStats) -> tuple:
    """`frames` written to in.pcap, then copied batch by batch as live capture saves
    (PcapngWriter in place, write_batch) to out.pcapng, closed with `stats` in an
    Interface Statistics Block: (in.pcap, out.pcapng)."""
    src = tmp_path / "in.pcap"
    write_pcap(src, frames, linktype=1, nanosecond=True)
    out = tmp_path / "out.pcapng"
    with open_capture(src) as cap, PcapngWriter(out, in_place=True) as writer:
        iface = writer.add_interface(1, "in", snaplen=cap.interfaces[0].snaplen)
        for batch in cap:
            writer.write_batch(batch, iface, flush=True)
        writer.write_statistics(iface, frames[-1][0], ifrecv=stats.received_by_filter,
                                osdrop=stats.dropped_by_kernel)
    return src, out


def test_epb_encoding_reads_back(tmp_path):
    frames = sample_frames(50)
    src, out = _epb_copy(tmp_path, frames, CaptureStats(50, 100, 2, None))
    with open_capture(out) as back:
        got = [(f.ts_ns, f.data) for f in back.frames()]
        assert back.format == "pcapng" and back.counters["interface_statistics_blocks"] == 1
    assert got == frames
    # write_batch's numpy blocks are byte for byte what write() makes one frame at a time
    one_by_one = tmp_path / "one.pcapng"
    with PcapngWriter(one_by_one) as w:
        iface = w.add_interface(1, "in")
        for ts, data in frames:
            w.write(ts, iface, data)
    with PcapngWriter(tmp_path / "batch.pcapng") as w, open_capture(src) as cap:
        iface = w.add_interface(1, "in")
        for batch in cap:
            w.write_batch(batch, iface)
    assert (tmp_path / "batch.pcapng").read_bytes() == one_by_one.read_bytes()


@pytest.mark.oracle
def test_epb_file_is_read_by_tshark(tmp_path):
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not installed")
    _, out = _epb_copy(tmp_path, sample_frames(20), CaptureStats(20, 40, 0, None))
    res = subprocess.run([tshark, "-r", str(out), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "tcp.seq_raw"], capture_output=True, text=True, check=True)
    lines = res.stdout.split("\n")[:-1]
    assert len(lines) == 20
    assert [int(line.split("\t")[1]) for line in lines] == [1000 + 10 * i for i in range(20)]


# ---------------------------------------------------------------------------
# Real capture on lo (root)
# ---------------------------------------------------------------------------


class Traffic:
    """A bounded server and client on 127.0.0.1: K connections, known payloads.

    Connection i: the client sends ``name-i`` (padded to 20 + i bytes), the
    server answers ``Hello, name-i!`` (len + 8 bytes), the client closes first
    (so it is the one in TIME_WAIT), the server closes when it reads EOF.
    """

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(10)
        self.port = self.server.getsockname()[1]
        self.client_ports: list[int] = []
        self.requests = [f"name-{i}".ljust(20 + i, ".").encode() for i in range(k)]
        self.replies = [b"Hello, " + r + b"!" for r in self.requests]

    def run(self, pause: float = 0.0) -> None:
        errors = []

        def serve() -> None:
            try:
                for _ in range(self.k):
                    conn, _ = self.server.accept()
                    with conn:
                        conn.settimeout(10)
                        data = conn.recv(1000)
                        conn.sendall(b"Hello, " + data + b"!")
                        while conn.recv(1000):
                            pass
            except OSError as exc:  # pragma: no cover - reported below
                errors.append(exc)

        t = threading.Thread(target=serve)
        t.start()
        for i in range(self.k):
            c = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.client_ports.append(c.getsockname()[1])
            c.sendall(self.requests[i])
            got = b""
            while len(got) < len(self.replies[i]):
                got += c.recv(1000)
            assert got == self.replies[i]
            c.close()
            time.sleep(pause)
        t.join(15)
        assert not errors

    def close(self) -> None:
        self.server.close()


def start_live(*args: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([*TCPSCOPE, "live", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    # The banner comes once the helper listens.
    line = proc.stderr.readline()
    if "capturing on" not in line:
        proc.kill()
        raise AssertionError(f"tcpscope live did not start: {line}{proc.stderr.read()}")
    return proc


def stop_live(proc: subprocess.Popen, timeout: float = 20) -> tuple[list[dict], str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()], err


@pytest.fixture
def reference_capture(tmp_path):
    """An independent tcpdump writing its own file (the packet-count oracle)."""
    procs = []

    def start(port: int) -> Path:
        path = tmp_path / "reference.pcap"
        p = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-n", "-s", "256", "-w", str(path),
                              "tcp", "port", str(port)], stderr=subprocess.PIPE, text=True)
        assert "listening on" in p.stderr.readline()
        procs.append(p)
        return path

    yield start
    for p in procs:
        p.send_signal(signal.SIGINT)
        p.wait(10)


@pytest.mark.root
@needs_root
@needs_tcpdump
def test_live_on_loopback_counts_what_was_generated(tmp_path, reference_capture):
    traffic = Traffic(k=5)
    saved = tmp_path / "live.pcapng"
    try:
        ref = reference_capture(traffic.port)
        proc = start_live("-i", "lo", "--format", "jsonl", "-w", str(saved), "--interval", "0.2",
                          "tcp", "port", str(traffic.port))
        traffic.run()
        time.sleep(0.5)
        events, err = stop_live(proc)
    finally:
        traffic.close()
    summary = events[-1]
    assert summary["event"] == "summary"
    by_kind: dict[str, list[dict]] = {}
    for ev in events[:-1]:
        by_kind.setdefault(ev["event"], []).append(ev)

    # Connections, handshakes and closes: exactly what the generator made.
    assert summary["connections"] == traffic.k
    assert len(by_kind["new"]) == traffic.k
    assert len(by_kind["handshake"]) == traffic.k
    assert len(by_kind["closed"]) == traffic.k
    assert sorted(int(e["client"].rsplit(":", 1)[1]) for e in by_kind["new"]) == \
        sorted(traffic.client_ports)
    table = summary["table"]
    for row, req, rep in zip(table, traffic.requests, traffic.replies):
        assert row["handshake"] == "3way"
        assert row["teardown"] in ("4way", "3way")
        assert row["state"] == "TIME_WAIT / CLOSED"  # the client closed first
        assert row["server"] == f"127.0.0.1:{traffic.port}"
        assert row["bytes"] == [len(req), len(rep)]  # the payload, byte for byte
    assert "rst" not in by_kind and "anomaly" not in by_kind

    # Packets: what tcpscope read is what tcpdump said it captured, with nothing dropped,
    # and what an independent tcpdump on the same filter saw.
    cap = summary["capture"]
    assert cap["dropped_by_kernel"] == 0
    assert summary["frames"] == cap["captured"] == summary["tcp_frames"]
    time.sleep(0.3)
    with open_capture(ref) as r:
        ref_frames = sum(len(b) for b in r)
    assert summary["frames"] == ref_frames
    assert sum(sum(row["pkts"]) for row in table) == summary["frames"]

    # -w: the saved file reads back to what was shown.
    back = analyze(saved)
    assert len(back) == summary["frames"]
    assert [(c["stream"], c["client_side"]["packets"], c["server_side"]["packets"],
             c["client_side"]["bytes"], c["server_side"]["bytes"])
            for c in back.connection_dicts()] == \
        [(r["stream"], r["pkts"][0], r["pkts"][1], r["bytes"][0], r["bytes"][1]) for r in table]
    frames_shown = {e["frame"] for e in events if "frame" in e}
    assert max(frames_shown) <= len(back)
    for e in by_kind["new"]:  # the frame an event names is that packet in the file
        i = e["frame"] - 1
        assert int(back.records["sport"][i]) == int(e["client"].rsplit(":", 1)[1])
    with open_capture(saved) as f:
        assert f.interfaces[0].name == "lo"
        list(f)
        assert f.counters["interface_statistics_blocks"] == 1


@pytest.mark.root
@needs_root
@needs_tcpdump
def test_live_text_output_and_count(tmp_path):
    traffic = Traffic(k=3)
    try:
        proc = subprocess.Popen([*TCPSCOPE, "live", "-i", "lo", "-c", "8", "tcp", "port",
                                 str(traffic.port)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        assert "capturing on lo" in proc.stderr.readline()
        traffic.run()
        out, err = proc.communicate(timeout=20)
    finally:
        traffic.close()
    assert proc.returncode == 0, err
    # -c 8: tcpdump stops after 8 packets, all of them read.
    assert "tcpscope read 8 frames (8 TCP) in 1 connections; capture: 8 captured" in out
    assert "#0     new        127.0.0.1:" in out
    assert "handshake  handshake complete: client ESTABLISHED, server ESTABLISHED, iRTT" in out


@pytest.mark.root
@needs_root
@needs_tcpdump
def test_live_sockets_panel_shows_the_kernel_states(tmp_path):
    traffic = Traffic(k=2)
    try:
        proc = start_live("-i", "lo", "--format", "jsonl", "--sockets", "--interval", "0.1",
                          "tcp", "port", str(traffic.port))
        time.sleep(0.4)  # one look before any packet: LISTEN comes from the filter's port
        traffic.run(pause=0.3)
        time.sleep(0.4)
        events, _ = stop_live(proc)
    finally:
        traffic.close()
    kernel = [e for e in events if e["event"] == "kernel"]
    assert any(e["after"] == "LISTEN" and e["local"] == f"127.0.0.1:{traffic.port}"
               for e in kernel)
    # The client closed first: its side ends in TIME_WAIT, in the kernel too.
    tw = {int(e["local"].rsplit(":", 1)[1]) for e in kernel if e["after"] == "TIME_WAIT"}
    assert set(traffic.client_ports) <= tw


@pytest.mark.root
@needs_root
@needs_tcpdump
def test_bad_filter_and_missing_interface(tmp_path):
    res = subprocess.run([*TCPSCOPE, "live", "-i", "lo", "--duration", "1", "tcp", "portx", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "bad filter expression" in res.stderr
    res = subprocess.run([*TCPSCOPE, "live", "-i", "tcpscope-none0", "--duration", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert res.returncode == 1
    assert res.stderr == "tcpscope: tcpscope-none0: no such interface (see `ip link`)\n"


@pytest.mark.root
@needs_root
@needs_tcpdump
def test_without_privilege_one_line_and_exit_1():
    """The real command as `nobody` with every capability dropped: tcpdump is refused."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    env["HOME"] = "/nonexistent"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    res = subprocess.run(
        [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", *TCPSCOPE, "live", "-i", "lo", "--duration", "1"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=30)
    assert res.returncode == 1, res.stderr
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("tcpscope: lo: not allowed to capture (needs root, or "
                                 "CAP_NET_RAW and CAP_NET_ADMIN")


def test_live_session_without_capture_feeds_file_batches():
    """The presentation is sans-IO: the same events from a file's batches."""
    from io import StringIO

    from tcpscope.present.live import LiveSession

    demo = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"
    out = StringIO()
    session = LiveSession(out, fmt="jsonl")
    with open_capture(demo) as cap:
        for batch in cap:
            for start in range(0, len(batch), 3):  # small batches, as live capture makes them
                sub = type(batch)(batch.data, batch.offset[start:start + 3],
                                  batch.caplen[start:start + 3], batch.origlen[start:start + 3],
                                  batch.ts_ns[start:start + 3], batch.iface[start:start + 3],
                                  batch.linktype[start:start + 3], batch.first_frame + start)
                session.feed(sub)
    summary = session.finish(None)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [e["event"] for e in events]
    whole = analyze(demo)
    assert summary["frames"] == len(whole)
    assert kinds.count("new") == len(whole.connections) == summary["connections"]
    assert np.array_equal([r["pkts"] for r in summary["table"]],
                          whole.connections["pkts"].tolist())
