"""lab/: reproduce the classic TCP experiments with real sockets and the real kernel.

Each experiment (experiments/) builds what it needs — a loopback, or network
namespaces joined by veth pairs, nft rules, sysctls, a userspace relay for loss
and delay — runs a small server and client, captures the traffic with tcpdump,
then has tcpscope analyse the capture, tells its story (story.py: the hook for
`tcpscope explain`) and checks "what you should see" against that analysis.

    tcpscope lab list
    tcpscope lab run handshake [--keep DIR]
    tcpscope lab run all

See docs/lab.md.
"""
from __future__ import annotations

from .base import EXPERIMENTS, Expectation, Experiment, Outcome, Result
from .runner import list_lines, run_experiment, run_many
from . import experiments  # noqa: F401,E402  (registers the experiments)

__all__ = [
    "EXPERIMENTS", "Experiment", "Expectation", "Outcome", "Result", "list_lines",
    "run_experiment", "run_many",
]
