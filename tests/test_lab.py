"""The lab: every experiment's expectations pass, and nothing is ever left behind.

The experiments need root (network namespaces, nft, tcpdump); those tests are marked
`root` and skip, visibly, without it. The classifiers the expectations use are
also checked on the project's own fixtures, which needs no privilege.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from tcpscope.lab import EXPERIMENTS, run_experiment
from tcpscope.lab.capture import RUNNING
from tcpscope.lab.checks import backoff_matches, handshake, syn_rule, teardown
from tcpscope.lab.facts import Facts
from tcpscope.lab.topology import PREFIX

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="the lab's experiments need root (network namespaces, nft, tcpdump): "
                        "run the suite as root to check them")
PYTHON = sys.executable


# ------------------------------------------------------------------ what is left behind


def _namespaces(pid: int | None = None) -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    prefix = f"{PREFIX}{pid}-" if pid is not None else PREFIX
    return sorted(n for n in names if n.startswith(prefix))


def _processes(needle: str) -> list[str]:
    """Command lines of running processes that contain `needle`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmd and "pytest" not in cmd:
            found.append(f"{entry}: {cmd.strip()}")
    return found


#: Names the lab gives interfaces (inside its namespaces) and its nft table: none of them may
#: ever appear in the namespace the tests run in. (Other engineers' tests may run at the same
#: time, so only what the lab could have made is compared.)
LAB_LINKS = {"c0", "s0", "s1", "k0", "mc", "ms", "br0"}


def _root_ns_state() -> tuple[set[str], str]:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line}
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout \
        if shutil.which("nft") else ""
    return names & LAB_LINKS, "\n".join(ln for ln in tables.splitlines() if ln.endswith(" lab"))


def _assert_nothing_left(pid: int, baseline: tuple[set[str], str], tag: str = "") -> None:
    assert _namespaces(pid) == [], f"lab namespaces left: {_namespaces(pid)}"
    procs = _processes(f"tcpscope-lab-{pid}-{tag}")
    assert procs == [], f"tcpdump (or a helper) still running: {procs}"
    links, tables = _root_ns_state()
    assert links <= baseline[0], f"lab links in the root namespace: {links - baseline[0]}"
    assert tables == baseline[1], "an nft table named lab appeared in the root namespace"


@pytest.fixture
def baseline():
    return _root_ns_state()


# ------------------------------------------------------------------ every experiment


@pytest.mark.root
@needs_root
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_expectations_pass(name: str, baseline) -> None:
    out = io.StringIO()
    result = run_experiment(name, out)
    failed = [f"{o.expectation.text}\n    seen: {o.detail}" for o in result.outcomes
              if not o.passed]
    assert result.status == "passed", (
        f"{name}: {result.status} {result.reason}\n" + "\n".join(failed)
        + "\n--- output ---\n" + out.getvalue()[-4000:])
    assert result.outcomes, "an experiment without expectations proves nothing"
    assert result.seconds < 10, f"{name} took {result.seconds:.1f} s"
    assert not RUNNING
    _assert_nothing_left(os.getpid(), baseline, name)


@pytest.mark.root
@needs_root
def test_keep_writes_capture_and_readme(tmp_path: Path, baseline) -> None:
    import tcpscope

    result = run_experiment("refused", io.StringIO(), keep=tmp_path)
    assert result.status == "passed"
    pcap, readme = tmp_path / "refused.pcap", tmp_path / "refused.README.md"
    assert pcap.exists() and readme.exists()
    assert len(tcpscope.analyze(pcap)) == 2
    text = readme.read_text()
    for part in ("## Topology", "ip netns add", "tcpdump", "## What you should see", "**PASS**",
                 "## Why", "## What to look at"):
        assert part in text, part
    _assert_nothing_left(os.getpid(), baseline, "refused")


# ------------------------------------------------------------------ interrupted runs


def _default_sigint() -> None:
    # A suite started in the background (`sh scripts/test &`) runs with SIGINT ignored, and a
    # child inherits that: Python then never raises KeyboardInterrupt, so the experiment would
    # run to its end. The child of an interactive Ctrl-C has the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "tcpscope", "lab", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, preexec_fn=_default_sigint, **kw)


def _wait_for(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.root
@needs_root
@pytest.mark.parametrize("name,when,sig", [
    ("synack-retry", "capturing", signal.SIGINT),   # nft rule, ss sampler, tcpdump running
    ("simultaneous-close", "capturing", signal.SIGINT),  # relay thread in a third namespace
    ("syn-flood", "setup", signal.SIGINT),           # while the namespaces are being built
    ("syn-retry", "capturing", signal.SIGTERM),      # SIGTERM is handled the same way
])
def test_interrupted_run_leaves_nothing(name: str, when: str, sig: int, baseline) -> None:
    proc = _start([name])
    try:
        if when == "setup":
            started = _wait_for(lambda: _namespaces(proc.pid), 15)
        else:
            started = _wait_for(lambda: _processes(f"tcpscope-lab-{proc.pid}-{name}"), 15)
        assert started, f"{name} never got to {when}"
        time.sleep(0.3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "interrupted" in err
    _assert_nothing_left(proc.pid, baseline, name)


# ------------------------------------------------------------------ without root


def _as_nobody(args: list[str], path_prefix: str | None = None) -> subprocess.CompletedProcess:
    """Run `tcpscope ARGS` as the unprivileged user nobody (we are root)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed (util-linux)")
    code = ("import os, sys\n"
            "if sys.argv[1]: os.environ['PATH'] = sys.argv[1] + ':' + os.environ['PATH']\n"
            "sys.argv = ['tcpscope'] + sys.argv[2:]\n"
            "from tcpscope.cli import main\n"
            "main()\n")
    return subprocess.run(
        [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", PYTHON, "-c", code,
         path_prefix or "", *args],
        capture_output=True, text=True, cwd="/tmp", timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_lab_list_works_without_root() -> None:
    if IS_ROOT:
        proc = _as_nobody(["lab", "list"])
    else:
        proc = subprocess.run([PYTHON, "-m", "tcpscope", "lab", "list"], capture_output=True,
                              text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for name, cls in EXPERIMENTS.items():
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(name + " "))
        assert ("root" if cls.needs_root else "lo") in line.split()[1]
    assert "You are not root" in proc.stdout


def test_unknown_experiment_is_a_usage_error() -> None:
    proc = subprocess.run([PYTHON, "-m", "tcpscope", "lab", "run", "no-such-thing"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "lab list" in proc.stderr


@pytest.mark.root
@needs_root
def test_without_root_experiments_are_skipped_with_the_reason() -> None:
    proc = _as_nobody(["lab", "run", "refused", "syn-retry"])
    assert proc.returncode == 0, proc.stderr
    assert "SKIPPED: needs root" in proc.stdout  # syn-retry
    assert "CAP_NET_RAW" in proc.stdout  # refused: tcpdump may not capture as nobody


@pytest.mark.root
@needs_root
def test_loopback_experiments_run_without_root_when_capture_is_allowed() -> None:
    setcap = shutil.which("setcap")
    if setcap is None:
        pytest.skip("setcap is not installed (libcap2-bin)")
    # A private copy of tcpdump with the capture capability, in a directory nobody may
    # enter (pytest's tmp_path is under a root-only directory).
    bindir = Path(tempfile.mkdtemp(prefix="tcpscope-captest-"))
    try:
        os.chmod(bindir, 0o755)
        tcpdump = bindir / "tcpdump"
        shutil.copy(shutil.which("tcpdump"), tcpdump)
        subprocess.run([setcap, "cap_net_raw,cap_net_admin+eip", str(tcpdump)], check=True)
        proc = _as_nobody(["lab", "run", "refused", "close-3"], str(bindir))
    finally:
        shutil.rmtree(bindir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "PASSED   refused" in proc.stdout and "PASSED   close-3" in proc.stdout


# ------------------------------------------------------------------ the classifiers, no root


@pytest.mark.parametrize("capture,stream,kind,closer,tw", [
    ("close_3way.pcap", 0, "3way", "client", "client"),
    ("lo_ipv4.pcap", 0, "4way", "client", "client"),
    ("half_close.pcap", 0, "half_close", "client", "client"),
    ("rst_abort.pcap", 0, "rst_client", "client", "none"),
])
def test_teardown_classifier_on_fixtures(capture: str, stream: int, kind: str, closer: str,
                                         tw: str) -> None:
    td = teardown(Facts.from_capture(FIXTURES / capture, mode="improved"), stream)
    assert (td.kind, td.first_closer, td.time_wait_side) == (kind, closer, tw)


def test_handshake_classifier_on_fixtures() -> None:
    f = Facts.from_capture(FIXTURES / "handshake_retries.pcap")
    assert [handshake(f, n).kind for n in (0, 1, 2)] == ["3way+retries", "3way+retries",
                                                         "unanswered"]
    assert len(handshake(f, 0).syns) == 3 and len(handshake(f, 1).synacks) >= 2
    refused = Facts.from_capture(FIXTURES / "refused.pcap")
    assert handshake(refused, 0).kind == "rejected"


def test_syn_backoff_rule() -> None:
    # Documentation/networking/ip-sysctl.rst: 4 linear timeouts give 1, 1, 1, 1, 1, 2, 4 ...
    assert syn_rule(7, 4) == [1, 1, 1, 1, 1, 2, 4]
    assert syn_rule(3, 0) == [1, 2, 4]  # RFC 6298: SYNs at 0, 1, 3, 7 s
    assert backoff_matches([1.02, 2.03], [1, 2])
    assert not backoff_matches([1.02, 1.03], [1, 2])


def test_spoofed_syns_are_valid_syns(tmp_path: Path) -> None:
    from tcpscope.capture.writer import write_pcap
    from tcpscope.lab.experiments.flood import FLOOD, spoofed_syns

    frames = spoofed_syns(5000, 1, FLOOD, seed=5000)
    assert frames == spoofed_syns(5000, 1, FLOOD, seed=5000)  # the same burst every run
    path = tmp_path / "syns.pcap"
    write_pcap(path, [(i * 1000, f) for i, f in enumerate(frames)], 1)
    f = Facts.from_capture(path)
    assert len(f.packets) == FLOOD and all(p.syn and p.dport == 5000 for p in f.packets)
    assert len({p.src for p in f.packets}) == FLOOD
    assert all(p.src.startswith("10.200.66.") for p in f.packets)


def test_time_wait_timer_parsing() -> None:
    from tcpscope.lab.experiments.closing import tw_remaining

    assert tw_remaining("0 0 127.0.0.1:1 127.0.0.1:2 timer:(timewait,59sec,0)") == 59
    assert tw_remaining("x timer:(timewait,1min,0)") == 60
    assert tw_remaining("x timer:(timewait,500ms,0)") == 0.5
    assert tw_remaining("no timer") is None
