"""DNS over TCP (port 53) as tcpdump prints it (placeholder)."""
from __future__ import annotations

from .tcpdump_options import Cursor


def domain_print(cur: Cursor, bp: int, length: int, verbose: int, over_tcp: bool) -> None:
    cur.proto = "domain"
