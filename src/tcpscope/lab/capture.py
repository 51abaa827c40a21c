"""tcpdump as the lab's capture helper.

`Tcpdump` runs ``tcpdump -U --immediate-mode -w FILE -i IFACE FILTER`` (inside a
namespace when given one), waits until it says "listening on" before the
experiment sends anything, and when the block ends waits a little so the last
packets are written, then stops it with SIGINT (so the file is flushed and closed)
and kills it if it does not stop. Every tcpdump the lab starts is in `RUNNING`
until it has exited, so an interrupted run can be cleaned up too.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

from .topology import LabError

__all__ = ["Tcpdump", "CaptureUnavailable", "RUNNING", "stop_all"]

READY_TIMEOUT = 10.0  # seconds for tcpdump to start listening
STOP_TIMEOUT = 5.0  # seconds for tcpdump to exit after SIGINT

#: tcpdump processes started and not yet reaped (pid -> Popen).
RUNNING: dict[int, subprocess.Popen] = {}
_running_lock = threading.Lock()


class CaptureUnavailable(LabError):
    """tcpdump cannot capture here (not installed, or no permission)."""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    with _running_lock:
        RUNNING.pop(proc.pid, None)


def stop_all() -> None:
    """Stop every tcpdump the lab started (for an interrupted run)."""
    with _running_lock:
        procs = list(RUNNING.values())
    for proc in procs:
        _stop(proc)


class Tcpdump:
    """Capture `iface` (in namespace `ns`, or here if None) to `path` during a ``with`` block.

    Args:
        settle: seconds to wait after the block before stopping, so the last
            packets reach the file.
    """

    def __init__(self, path: Path, iface: str, bpf: str, *, ns: str | None = None,
                 settle: float = 0.2) -> None:
        self.path = Path(path)
        self.iface = iface
        self.bpf = bpf
        self.ns = ns
        self.settle = settle
        self.stderr: list[str] = []
        self.captured: int | None = None
        self.dropped: int | None = None
        self.started_at: float | None = None  # wall clock: the capture's time base
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    @property
    def command(self) -> list[str]:
        """The tcpdump command as a person would run it (inside the namespace)."""
        return ["tcpdump", "-U", "--immediate-mode", "-i", self.iface, "-w", str(self.path),
                self.bpf]

    def shell_command(self, file: str | None = None) -> str:
        """The command line, with `file` instead of the real path if given."""
        cmd = self.command
        if file is not None:
            cmd[cmd.index("-w") + 1] = file
        if self.ns is not None:
            cmd = ["ip", "netns", "exec", self.ns, *cmd]
        return shlex.join(cmd)

    def __enter__(self) -> Tcpdump:
        cmd = self.command
        if self.ns is not None:
            cmd = ["ip", "netns", "exec", self.ns, *cmd]
        if self.path.exists():
            self.path.unlink()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
        except FileNotFoundError as exc:
            raise CaptureUnavailable("tcpdump is not installed") from exc
        self._proc = proc
        with _running_lock:
            RUNNING[proc.pid] = proc
        ready = threading.Event()
        listening = threading.Event()

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.stderr.append(line.rstrip("\n"))
                if "listening on" in line:
                    listening.set()
                    ready.set()
            ready.set()  # end of stderr: tcpdump is gone

        self._reader = threading.Thread(target=drain, daemon=True, name="tcpdump-stderr")
        self._reader.start()
        try:
            if not ready.wait(READY_TIMEOUT) or not listening.is_set():
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
                self._reader.join(timeout=2)
                text = " ".join(self.stderr).strip() or "no output"
                if re.search(r"permission|not permitted|privilege", text, re.I):
                    raise CaptureUnavailable(f"tcpdump may not capture here: {text}")
                raise LabError(f"tcpdump did not start: {text}")
            time.sleep(0.1)  # the socket is bound; let the ring settle before traffic
        except BaseException:
            _stop(proc)
            raise
        self.started_at = time.time()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._proc is not None
        try:
            if exc_type is None:
                time.sleep(self.settle)
        finally:
            _stop(self._proc)
            if self._reader is not None:
                self._reader.join(timeout=2)
        text = "\n".join(self.stderr)
        m = re.search(r"(\d+) packets? captured", text)
        self.captured = int(m.group(1)) if m else None
        m = re.search(r"(\d+) packets? dropped by kernel", text)
        self.dropped = int(m.group(1)) if m else None
        if self.path.exists() and os.geteuid() == 0:
            # tcpdump drops root for its own user: give the file back to ours.
            os.chown(self.path, os.getuid(), os.getgid())
            os.chmod(self.path, 0o644)
        if exc_type is None and not self.path.exists():
            raise LabError(f"tcpdump wrote no file: {text}")
