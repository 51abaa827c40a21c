"""Network namespaces: reading a named namespace's /proc/net from this one.

``ip netns add NAME`` makes a namespace reachable as /run/netns/NAME; the
`NetnsProc` here enters it on a throwaway thread and keeps descriptors into it,
so that this process can re-read the namespace's socket tables while staying in
its own namespace (``tcpscope sockets --netns``, ``tcpscope live --netns
--sockets``).
"""
from __future__ import annotations

import ctypes
import os
import threading

from tcpscope.kernel import KernelError

__all__ = ["NetnsProc"]

CLONE_NEWNET = 0x40000000


class NetnsProc:
    """Files of /proc/net (by default the TCP socket tables, tcp and tcp6) of a
    named network namespace, re-readable from this one.

    ``setns`` moves only the calling *thread* into the namespace; a throwaway
    thread does that, opens ``/proc/thread-self/net/FILE`` (which belong to the
    namespace of the thread that opens them), and ends. The descriptors stay
    bound to that namespace; each `read_all` seeks to 0 and reads again. A file
    the namespace lacks (tcp6 with IPv6 disabled) is left out. Needs
    CAP_SYS_ADMIN (root), like ``ip netns exec``.
    """

    def __init__(self, name: str, files: tuple[str, ...] = ("tcp", "tcp6"), *,
                 run_dir: str = "/run/netns") -> None:
        self.name = name
        path = os.path.join(run_dir, name)
        if "/" in name or not os.path.exists(path):
            raise KernelError(f"network namespace {name!r} not found (see `ip netns list`)")
        self._fds: list[int] = []
        error: list[str] = []

        def enter_and_open() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            try:
                nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                error.append(f"cannot open {path}: {exc.strerror}")
                return
            try:
                if libc.setns(nsfd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    error.append(f"cannot enter network namespace {name!r}: {os.strerror(err)}"
                                 " (needs root or CAP_SYS_ADMIN)")
                    return
                for suffix in files:
                    try:
                        self._fds.append(os.open(f"/proc/thread-self/net/{suffix}",
                                                 os.O_RDONLY | os.O_CLOEXEC))
                    except FileNotFoundError:
                        pass
            finally:
                os.close(nsfd)

        # The thread's namespace change dies with it; the process is untouched.
        t = threading.Thread(target=enter_and_open, name=f"tcpscope-netns-{name}")
        t.start()
        t.join()
        if error:
            self.close()
            raise KernelError(error[0])

    def read_all(self) -> list[str]:
        """The text of every file, read again now."""
        texts = []
        for fd in self._fds:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while True:
                piece = os.read(fd, 1 << 16)
                if not piece:
                    break
                chunks.append(piece)
            texts.append(b"".join(chunks).decode("ascii"))
        return texts

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> NetnsProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
