"""kernel/: the host's own view of TCP, next to what the capture shows.

- `sockets`: the kernel's socket tables (/proc/net/tcp and tcp6), like ``ss -tan``;
- `netns`: reading them inside a named network namespace.

Nothing here reads frames (that is capture/); the CLI and the live view show
what is read here beside the analysis of the traffic.
"""
from __future__ import annotations

__all__ = ["KernelError"]


class KernelError(Exception):
    """The kernel's tables or a namespace could not be read (one line, for the CLI)."""
