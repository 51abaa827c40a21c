"""tcpscope: see what TCP does.

The Python API mirrors the command line:

    >>> import tcpscope
    >>> with tcpscope.open_capture("trace.pcap") as cap:
    ...     for batch in cap:                      # columnar FrameBatch objects
    ...         records = tcpscope.dissect_batch(batch)   # numpy structured array
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
