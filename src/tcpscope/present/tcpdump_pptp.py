"""PPTP control messages (TCP port 1723) as tcpdump prints them (placeholder)."""
from __future__ import annotations

from .tcpdump_options import Cursor


def pptp_print(cur: Cursor, bp: int) -> None:
    cur.proto = "pptp"
