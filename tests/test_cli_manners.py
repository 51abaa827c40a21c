"""Terminal manners: progress only on stderr (tested under a pseudo-terminal), Ctrl-C,
colours (NO_COLOR, FORCE_COLOR, --color), examples in every --help, the file options of
every file command, tcpdump's flags."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from conftest import FIXTURES

from tcpscope.capture import write_pcap
from tcpscope.cli import main
from tcpscope.present.demo import demo_capture
from tcpscope.wire.builder import TCP, Ether, Frame, IPv4

DEMO_ARGS: list[str] = []


def tcpscope(*args: str, env: dict | None = None, stdin: bytes | None = None,
             ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcpscope", *args], input=stdin,
                          capture_output=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A capture of 9 MB (above the progress bar's threshold): one long connection."""
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    syn = Frame(Ether(), IPv4(src="10.0.0.1", dst="10.0.0.2"),
                TCP(sport=40000, dport=80, flags="S", seq=1000))
    frames = [(1_700_000_000_000_000_000, syn.build())]
    data = Frame(Ether(), IPv4(src="10.0.0.1", dst="10.0.0.2"),
                 TCP(sport=40000, dport=80, flags="A", seq=1001, ack=1), payload=b"x" * 1400)
    raw = bytearray(data.build())
    for i in range(6600):
        frames.append((1_700_000_000_000_000_000 + (i + 1) * 1000, bytes(raw)))
    write_pcap(path, frames, 1)
    assert path.stat().st_size > 8 << 20
    return path


def _run_with_pty_stderr(args: list[str], out: Path) -> tuple[int, bytes]:
    """Run tcpscope with stdin and stderr on a pseudo-terminal and stdout to `out`, as
    `tcpscope explain big.pcap > out.txt` from a terminal; returns (code, what the
    terminal showed)."""
    master, slave = pty.openpty()
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "tcpscope", *args], stdin=slave,
                                stdout=fh, stderr=slave, env={**os.environ, "COLUMNS": "100"})
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            shown += chunk
            if not chunk and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=300)
    os.close(master)
    return code, shown


def test_progress_goes_to_the_terminal_and_stdout_stays_whole(big: Path, tmp_path: Path) -> None:
    plain = tcpscope("explain", str(big), "--stream", "0")
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "story.txt"
    code, shown = _run_with_pty_stderr(["explain", str(big), "--stream", "0"], out)
    assert code == 0, shown
    assert out.read_bytes() == plain.stdout          # nothing lost, nothing added
    assert b"reading big.pcap" in shown              # the bar was on the terminal
    assert plain.stdout[:40] not in shown            # and the story was not


def test_ctrl_c_is_a_newline_and_exit_130() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tcpscope", "read", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"\xd4\xc3\xb2\xa1")  # the start of a pcap header: it waits for more
    proc.stdin.flush()
    time.sleep(2.0)  # let it start reading (not a timing assertion)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == b"\n" and out == b""


def _color_run(args: list[str], env: dict) -> bytes:
    """stdout of a command whose stdout is a terminal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tcpscope", *args], stdout=slave,
                            stderr=subprocess.DEVNULL, env={**os.environ, **env})
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    proc.wait(timeout=120)
    os.close(master)
    return shown


@pytest.mark.parametrize("command", [["conns"], ["explain", "--stream", "0"],
                                     ["ladder", "--stream", "0"], ["follow", "--stream", "0"]])
def test_no_color_is_honoured_by_every_command(command: list[str]) -> None:
    with demo_capture() as path:
        args = [command[0], str(path), *command[1:]]
        env_clean = {"NO_COLOR": "", "FORCE_COLOR": ""}
        assert b"\x1b[" in _color_run(args, env_clean)
        assert b"\x1b[" not in _color_run(args, {"NO_COLOR": "1", "FORCE_COLOR": ""})
        piped = tcpscope(*args, env={"NO_COLOR": "", "FORCE_COLOR": "1"})
        assert b"\x1b[" in piped.stdout                       # FORCE_COLOR for a pager
        always = tcpscope(*args, "--color", "always", env={"NO_COLOR": "", "FORCE_COLOR": ""})
        assert b"\x1b[" in always.stdout
        assert b"\x1b[" not in tcpscope(*args, env={"FORCE_COLOR": ""}).stdout


def _commands() -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in main.commands.items():
        if isinstance(cmd, click.Group):
            out += [(f"{name} {sub}", c) for sub, c in cmd.commands.items()]
        else:
            out.append((name, cmd))
    return out


@pytest.mark.parametrize("name,cmd", _commands(), ids=[n for n, _ in _commands()])
def test_every_help_ends_with_examples(name: str, cmd: click.Command) -> None:
    from click.testing import CliRunner

    res = CliRunner().invoke(main, [*name.split(), "--help"])
    text = res.output
    assert "Examples:" in text, name
    last = text.rstrip("\n").split("\n\n")[-1]    # the help ends with them
    assert last.lstrip().startswith("Examples:"), (name, last)
    examples = [ln.strip() for ln in last.splitlines()[1:]]
    assert 2 <= len(examples) <= 3, (name, last)
    assert all(e.removeprefix("sudo ").startswith("tcpscope ") for e in examples), examples


FILE_COMMANDS = ["read", "packets", "conns", "explain", "ladder", "follow", "graph"]


@pytest.mark.parametrize("name", FILE_COMMANDS)
def test_every_file_command_takes_the_file_options(name: str) -> None:
    opts = {o for p in main.commands[name].params for o in getattr(p, "opts", [])}
    assert {"-r", "-c", "-Y", "--stream"} <= opts
    arg = next(p for p in main.commands[name].params if isinstance(p, click.Argument))
    assert arg.nargs == -1


def test_read_takes_tcpdumps_habits() -> None:
    src = str(FIXTURES / "lo_ipv4.pcap")
    a = tcpscope("read", "-nn", "-r", src, "tcp", "and", "port", "5000", "-c", "3")
    b = tcpscope("read", src, "-c", "3")
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.count(b"\n") == 3
    for flag, why in [("-i", "live"), ("-K", "checksums")]:
        r = tcpscope("read", src, flag)
        assert r.returncode == 2 and r.stderr.count(b"\n") == 1 and why.encode() in r.stderr
    v = tcpscope("-V")
    assert v.returncode == 0 and v.stdout.startswith(b"tcpscope, version ")


def test_stream_by_address_either_order_and_ipv6() -> None:
    src = str(FIXTURES / "lo_ipv4.pcap")
    by_num = tcpscope("follow", src, "--stream", "0")
    for spec in ["127.0.0.1:5000-127.0.0.1:44558", "127.0.0.1:44558-127.0.0.1:5000",
                 "127.0.0.1:5000"]:
        r = tcpscope("follow", src, "--stream", spec)
        assert r.returncode == 0 and r.stdout == by_num.stdout, spec
    v6 = FIXTURES / "lo_ipv6.pcap"
    r = tcpscope("packets", str(v6), "--stream", "[::1]:5000", "--format", "csv")
    assert r.returncode == 0 and r.stdout.count(b"\n") > 3
    bad = tcpscope("packets", src, "--stream", "::1:5000")
    assert bad.returncode == 2 and b"brackets" in bad.stderr


def test_display_filter_errors_point_at_the_mistake() -> None:
    r = tcpscope("packets", str(FIXTURES / "lo_ipv4.pcap"), "-Y", "tcp.port == 80 &&")
    assert r.returncode == 2
    lines = r.stderr.decode().splitlines()
    assert "ends where a field was expected" in lines[0]
    assert lines[-1].index("^") - 4 == len("tcp.port == 80 &&")


def test_conns_filters_connections() -> None:
    with demo_capture() as path:
        all_ = tcpscope("conns", str(path), "--format", "csv").stdout.decode().splitlines()
        one = tcpscope("conns", str(path), "--format", "csv", "-Y",
                       'handshake == "3way" && tcp.port == 5000').stdout.decode().splitlines()
        none = tcpscope("conns", str(path), "--format", "csv", "-Y",
                        "tcp.analysis.retransmission").stdout.decode().splitlines()
    assert len(all_) >= 2 and one == all_[:2] and none == all_[:1]


def test_table_cells_keep_the_port() -> None:
    from tcpscope.present.conns import _cut

    assert _cut("[2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:44321", 20, 1) == "[2001:db8:aa…]:44321"
    assert _cut("10.0.0.1:80", 8, 2) == "10.0…:80"
    assert _cut("10.0.0.1:80", 20, 1) == "10.0.0.1:80"


def test_conns_table_uses_the_terminals_width() -> None:
    with demo_capture() as path:
        narrow = _color_run(["conns", str(path), "--no-color"], {"COLUMNS": "60"})
        wide = _color_run(["conns", str(path), "--no-color"], {"COLUMNS": "160"})
    assert b"\xe2\x80\xa6" in narrow and b":5000 " in narrow   # cut, the ports kept
    assert b"\xe2\x80\xa6" not in wide  # nothing cut on a wide terminal
