"""flows/: connections, their stream index and roles, and sequence-number arithmetic.

The tracking itself runs in the native analysis engine (one pass, Wireshark's
tcp.stream rules); see analysis/engine.py. Here: `Connection` objects built
from its summaries, and `seq` helpers (serial comparisons, 64-bit unwrapping)
for Python code that handles sequence numbers.
"""
from __future__ import annotations

from .connection import Connection, Side, connections_from_rows
from .seq import Unwrapper, seq_diff, seq_ge, seq_gt, seq_le, seq_lt

__all__ = ["Connection", "Side", "connections_from_rows", "Unwrapper", "seq_diff", "seq_ge",
           "seq_gt", "seq_le", "seq_lt"]
