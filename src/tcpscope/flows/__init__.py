"""flows/: connections, their stream index and roles, and sequence-number arithmetic.

The tracking itself runs in the native analysis engine (one pass, Wireshark's
tcp.stream rules); see analysis/engine.py. Here: `Connection` objects built
from its summaries. Sequence-number arithmetic is wire/seq.py.
"""
from __future__ import annotations

from .connection import Connection, Side, connections_from_rows

__all__ = ["Connection", "Side", "connections_from_rows"]
