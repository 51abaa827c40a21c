"""analysis/: Wireshark-compatible TCP analysis, per packet and per connection.

    >>> from tcpscope.analysis import Analyzer, analyze_file
    >>> a = analyze_file("trace.pcap")          # records, annotations, connections
    >>> an = Analyzer(mode="wireshark")         # or feed batches yourself

See analysis/engine.py and docs/analysis.md.
"""
from __future__ import annotations

from .annotation import ANNOTATION_DTYPE, CONN_DTYPE, FLAG, FLAG_BIT, FLAG_NAMES, flag_names
from .engine import MODES, Analysis, Analyzer, analyze_file, iter_file
from .rules import RULES, Rule, rule

__all__ = [
    "ANNOTATION_DTYPE", "CONN_DTYPE", "FLAG", "FLAG_BIT", "FLAG_NAMES", "flag_names",
    "MODES", "Analysis", "Analyzer", "analyze_file", "iter_file", "RULES", "Rule", "rule",
]
