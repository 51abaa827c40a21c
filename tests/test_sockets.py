"""The kernel's socket table: /proc/net/tcp{,6} parsed exactly, and checked against live sockets.

The samples are in the kernel's own format (net/ipv4/tcp_ipv4.c get_tcp4_sock,
get_openreq4, get_timewait4_sock; net/ipv6/tcp_ipv6.c), as printed on a
little-endian machine: one line per state code 01..0C, full sockets with the
seven trailing fields, request and TIME_WAIT sockets with their shorter lines.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpscope.kernel.sockets import (
    STATES,
    KernelSocket,
    parse_line,
    parse_proc_net_tcp,
    read_sockets,
)
from tcpscope.present.sockets import diff, plain_table

ROOT = Path(__file__).resolve().parent.parent

TCP4 = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1388 0100007F:D431 01 00000000:0000000C 00:00000000 00000000  1000        0 4711 1 0000000011111111 20 4 30 10 -1
   1: 0100007F:D432 0100007F:1388 02 00000001:00000000 01:0000012C 00000002  1000        0 4712 2 0000000022222222 400 0 0 1 7
   2: 0100007F:1388 0100007F:D433 03 00000000:00000000 01:00000064 00000001     0        0 0 1 0000000033333333
   3: 0100007F:D434 0100007F:1388 04 0000000A:00000000 01:00000010 00000000  1000        0 4714 2 0000000044444444 20 4 0 10 -1
   4: 0100007F:D435 0100007F:1388 05 00000000:00000000 00:00000000 00000000  1000        0 4715 1 0000000055555555 20 4 0 10 -1
   5: 0100007F:D436 0100007F:1388 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000066666666
   6: 0100007F:D437 0100007F:1388 07 00000000:00000000 00:00000000 00000000  1000        0 4717 1 0000000077777777 20 4 0 10 -1
   7: 0100007F:1388 0100007F:D438 08 00000000:00000005 00:00000000 00000000     0        0 4718 1 0000000088888888 20 4 30 10 -1
   8: 0100007F:1388 0100007F:D439 09 00000001:00000000 01:00000014 00000000     0        0 4719 2 0000000099999999 20 4 0 10 -1
   9: 00000000:1388 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 4720 1 00000000aaaaaaaa 100 0 0 10 0
  10: 0100007F:D43A 0100007F:1388 0B 00000001:00000000 01:00000014 00000000  1000        0 4721 2 00000000bbbbbbbb 20 4 0 10 -1
  11: 0100000A:0050 0200A8C0:C350 0C 00000000:00000000 00:00000000 00000000     0        0 4722 1 00000000cccccccc 20 4 0 10 -1
  12: 0100007F:D43B 0100007F:1388 01 00000000:00000000 04:FFFFFFFFFFFFFFFE 00000003  1000        5 4723 2 00000000dddddddd 200 4 0 3 2
"""

TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:93A7 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 558505 1 00000000ff87602d 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:B997 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 558508 1 00000000677eaeb6 100 0 0 10 0
   2: 00000000000000000000000001000000:93A7 00000000000000000000000001000000:CBBA 01 00000000:00000003 00:00000000 00000000     0        0 558507 1 000000009a5ed2b1 20 4 30 10 -1
   3: B80D0120000000000000000001000000:01BB B80D0120000000000000000002000000:E0E0 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000
"""

EXPECTED4 = [
    # state, local, lport, remote, rport, tx, rx, timer, ticks, retrans, uid, probes, inode
    ("ESTABLISHED", "127.0.0.1", 5000, "127.0.0.1", 54321, 0, 12, 0, 0, 0, 1000, 0, 4711),
    ("SYN_SENT", "127.0.0.1", 54322, "127.0.0.1", 5000, 1, 0, 1, 300, 2, 1000, 0, 4712),
    ("SYN_RECV", "127.0.0.1", 5000, "127.0.0.1", 54323, 0, 0, 1, 100, 1, 0, 0, 0),
    ("FIN_WAIT1", "127.0.0.1", 54324, "127.0.0.1", 5000, 10, 0, 1, 16, 0, 1000, 0, 4714),
    ("FIN_WAIT2", "127.0.0.1", 54325, "127.0.0.1", 5000, 0, 0, 0, 0, 0, 1000, 0, 4715),
    ("TIME_WAIT", "127.0.0.1", 54326, "127.0.0.1", 5000, 0, 0, 3, 6000, 0, 0, 0, 0),
    ("CLOSE", "127.0.0.1", 54327, "127.0.0.1", 5000, 0, 0, 0, 0, 0, 1000, 0, 4717),
    ("CLOSE_WAIT", "127.0.0.1", 5000, "127.0.0.1", 54328, 0, 5, 0, 0, 0, 0, 0, 4718),
    ("LAST_ACK", "127.0.0.1", 5000, "127.0.0.1", 54329, 1, 0, 1, 20, 0, 0, 0, 4719),
    ("LISTEN", "0.0.0.0", 5000, "0.0.0.0", 0, 0, 3, 0, 0, 0, 0, 0, 4720),
    ("CLOSING", "127.0.0.1", 54330, "127.0.0.1", 5000, 1, 0, 1, 20, 0, 1000, 0, 4721),
    ("NEW_SYN_RECV", "10.0.0.1", 80, "192.168.0.2", 50000, 0, 0, 0, 0, 0, 0, 0, 4722),
    ("ESTABLISHED", "127.0.0.1", 54331, "127.0.0.1", 5000, 0, 0, 4, -2, 3, 1000, 5, 4723),
]


def fields(s: KernelSocket) -> tuple:
    return (s.state, s.local, s.local_port, s.remote, s.remote_port, s.tx_queue, s.rx_queue,
            s.timer, s.timer_ticks, s.retransmits, s.uid, s.probes, s.inode)


def test_every_state_code_has_the_kernels_name():
    assert [STATES[i] for i in range(1, 13)] == [
        "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
        "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"]


def test_parse_ipv4_every_state_exactly():
    socks = parse_proc_net_tcp(TCP4, "little")
    assert [fields(s) for s in socks] == EXPECTED4
    assert all(s.family == 4 for s in socks)
    # The seven trailing fields of a full socket: rto, cwnd, ssthresh (-1: initial slow start).
    assert (socks[0].rto_ticks, socks[0].cwnd, socks[0].ssthresh) == (20, 10, -1)
    assert (socks[1].rto_ticks, socks[1].cwnd, socks[1].ssthresh) == (400, 1, 7)
    # Request and TIME_WAIT sockets print fewer fields: none of those.
    assert (socks[2].rto_ticks, socks[2].cwnd) == (None, None)
    assert (socks[5].timer_name, socks[5].timer_seconds) == ("timewait", 60.0)
    assert socks[12].timer_name == "probe"
    assert [s.rfc_state for s in socks[:4]] == ["ESTABLISHED", "SYN_SENT", "SYN_RECEIVED",
                                                "FIN_WAIT_1"]


def test_parse_ipv6_exactly():
    socks = parse_proc_net_tcp(TCP6, "little")
    assert [fields(s) for s in socks] == [
        ("LISTEN", "::1", 37799, "::", 0, 0, 0, 0, 0, 0, 0, 0, 558505),
        ("LISTEN", "::ffff:127.0.0.1", 47511, "::", 0, 0, 0, 0, 0, 0, 0, 0, 558508),
        ("ESTABLISHED", "::1", 37799, "::1", 52154, 0, 3, 0, 0, 0, 0, 0, 558507),
        ("TIME_WAIT", "2001:db8::1", 443, "2001:db8::2", 57568, 0, 0, 3, 3000, 0, 0, 0, 0),
    ]
    assert all(s.family == 6 for s in socks)
    assert socks[2].endpoint("remote") == "[::1]:52154"


def test_addresses_are_native_endian_words():
    """On a big-endian machine the same socket prints 7F000001."""
    little = parse_line("0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 "
                        "00000000 0 0 1", "little")
    big = parse_line("0: 7F000001:1388 00000000:0000 0A 00000000:00000000 00:00000000 "
                     "00000000 0 0 1", "big")
    assert little.local == big.local == "127.0.0.1"


@pytest.mark.parametrize("bad", ["", "sl local_address", "0: 0100007F:1388 garbage",
                                 "0: 01007F:1388 00000000:0000 0A 0:0 00:0 0 0 0 1"])
def test_not_a_socket_line(bad):
    with pytest.raises(ValueError):
        parse_line(bad, "little")


def test_plain_table_and_diff():
    socks = parse_proc_net_tcp(TCP4, "little")
    text = plain_table(socks)
    lines = text.splitlines()
    assert lines[0].split() == ["State", "Recv-Q", "Send-Q", "Local", "Address:Port", "Peer",
                                "Address:Port", "Timer", "Retr", "UID", "Inode"]
    assert lines[1].split()[0] == "NEW_SYN_RECV"  # sorted by local port: 80 first
    assert lines[2].split()[:5] == ["LISTEN", "3", "0", "0.0.0.0:5000", "0.0.0.0:0"]
    assert any("TIME_WAIT" in line and "timewait 60.00s" in line for line in lines)
    changes, now = diff({}, socks[:2])
    assert [c.text() for c in changes] == ["127.0.0.1:5000 -> 127.0.0.1:54321 ESTABLISHED",
                                           "127.0.0.1:54322 -> 127.0.0.1:5000 SYN_SENT"]
    moved = parse_proc_net_tcp(TCP4.replace(" 02 00000001", " 01 00000001"), "little")
    changes, _ = diff(now, [moved[1]])
    assert [c.text() for c in changes] == [  # sorted by local port
        "127.0.0.1:5000 -> 127.0.0.1:54321 ESTABLISHED -> gone",
        "127.0.0.1:54322 -> 127.0.0.1:5000 SYN_SENT -> ESTABLISHED"]


# ---------------------------------------------------------------------------
# The live kernel (no privilege needed: /proc/net/tcp is world-readable)
# ---------------------------------------------------------------------------


def test_live_listen_and_established_on_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    try:
        socks = read_sockets([port])
        assert [(s.state, s.local, s.local_port) for s in socks] == [("LISTEN", "127.0.0.1", port)]
        assert socks[0].inode > 0
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        cport = client.getsockname()[1]
        client.sendall(b"12345")
        time.sleep(0.05)
        socks = read_sockets([port])
        states = {(s.state, s.local_port, s.remote_port) for s in socks}
        assert states == {("LISTEN", port, 0), ("ESTABLISHED", cport, port),
                          ("ESTABLISHED", port, cport)}
        unread = [s for s in socks if s.state == "ESTABLISHED" and s.local_port == port]
        assert unread[0].rx_queue == 5  # sent, not read yet
        assert conn.recv(5) == b"12345"  # unread data would make close() send a RST
        client.close()
        conn.close()
        time.sleep(0.05)
        after = {(s.state, s.local_port) for s in read_sockets([port])}
        assert ("TIME_WAIT", cport) in after  # the client closed first
    finally:
        server.close()


def test_live_ipv6_listen():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = socket.socket(socket.AF_INET6)
    try:
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured")
    server.listen(1)
    port = server.getsockname()[1]
    try:
        socks = read_sockets([port])
        assert [(s.family, s.state, s.local) for s in socks] == [(6, "LISTEN", "::1")]
    finally:
        server.close()


def test_sockets_command():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        res = subprocess.run([sys.executable, "-m", "tcpscope", "sockets", "--port", str(port),
                              "--format", "jsonl"], capture_output=True, text=True, cwd=ROOT,
                             check=True)
        rows = [json.loads(line) for line in res.stdout.splitlines()]
        assert [(r["state"], r["local"], r["local_port"]) for r in rows] == \
            [("LISTEN", "127.0.0.1", port)]
        res = subprocess.run([sys.executable, "-m", "tcpscope", "sockets", "-p", str(port),
                              "--watch", "--interval", "0.1", "-n", "2", "--state", "listen"],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        assert res.stdout.count("--- ") == 2 and res.stdout.count("LISTEN") == 2
        res = subprocess.run([sys.executable, "-m", "tcpscope", "sockets", "--state", "bogus"],
                             capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 2
        res = subprocess.run([sys.executable, "-m", "tcpscope", "sockets", "--netns",
                              "tcpscope-no-such-ns"], capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 1
        assert res.stderr == ("tcpscope: network namespace 'tcpscope-no-such-ns' not found "
                              "(see `ip netns list`)\n")
    finally:
        server.close()


@pytest.mark.root
def test_sockets_in_a_network_namespace():
    import os
    import shutil

    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (ip netns)")
    ns = f"tcpscope-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import socket, sys, time\n"
             "s = socket.socket(); s.bind(('127.0.0.1', 7777)); s.listen()\n"
             "print('ready', flush=True); time.sleep(10)\n"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            res = subprocess.run([sys.executable, "-m", "tcpscope", "sockets", "--netns", ns,
                                  "--format", "jsonl"], capture_output=True, text=True,
                                 cwd=ROOT, check=True)
            rows = [json.loads(line) for line in res.stdout.splitlines()]
            assert [(r["state"], r["local_port"]) for r in rows] == [("LISTEN", 7777)]
            # ... and not in ours.
            assert all(s.local_port != 7777 or s.state != "LISTEN" for s in read_sockets([7777]))
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
