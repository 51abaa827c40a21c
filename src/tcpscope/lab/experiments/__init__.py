"""The lab's experiments, registered in the order `tcpscope lab list` shows them."""
from __future__ import annotations

from . import basics, handshake_trouble, closing, flow, flood, cookies, scans  # noqa: F401  (registration)
