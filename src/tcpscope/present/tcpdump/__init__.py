"""tcpdump's listing (`tcpscope read`): one path, the C printer, with Python payload printers.

listing.py   the options, the pipeline consumer and `write_listing`
_listing.c   the printer (with _link.c, _ip.c, _tcp.c; map in _listing.h)
payload.py   application payload printers (text protocols, SSH, Telnet, RESP), with
dns.py       DNS over TCP and
pptp.py      PPTP control messages, over
cursor.py    the frame's bytes as those printers read them
"""
from .listing import TcpdumpListing, TcpdumpOptions, format_timestamp, write_listing

__all__ = ["TcpdumpListing", "TcpdumpOptions", "format_timestamp", "write_listing"]
