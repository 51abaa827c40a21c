"""A connection's story as structured facts: what each packet does and why, in numbers.

`build_story(analysis, stream)` walks one connection's rows of an `Analysis`
(records, annotations, states, events, lifecycle) and produces, per packet, a
`Step` with a list of `Fact` (a message id and named parameters). Every number
in a fact is read from the analysis: sequence and acknowledgement numbers from
the records and annotations, round-trip times from ``ack_rtt_ns`` / ``irtt_ns``,
rules and evidence frames from the engine, state changes from the lifecycle's
`Transition` list. Where a fact states arithmetic (``ack = ISN + 1``) both
sides of the equation are parameters, so tests/test_explain_numbers.py can
check it against the capture.

Nothing here is a sentence: present/explain.py renders the facts through a
message catalogue (present/i18n/, one per language), present/ladder.py draws
the steps. Runs of ordinary packets (data and ACKs with no anomaly, no state
change and nothing new to teach) are folded into a `Run` so a bulk transfer
stays readable.

- model.py: Fact, Step, Run, ConnectionStory, Extra;
- collect.py: `collect` / `StoryCollector`, the pipeline consumer that keeps the rows told;
- packets.py: `Teller`, the facts of each packet; anomalies.py: of each analysis flag;
- summary.py: the introduction, the summary and the folded runs.
"""
from __future__ import annotations

import numpy as np

from ...analysis.engine import Analysis
from ...wire.text import format_endpoint
from .collect import StoryCollector, collect
from .model import GROUP_MIN, PREVIEW_BYTES, ConnectionStory, Extra, Fact, Run, Step
from .packets import teller_for
from .summary import fold, intro_facts, summary_facts

__all__ = [
    "Fact", "Step", "Run", "ConnectionStory", "Extra", "build_story", "build_stories", "collect",
    "StoryCollector", "PREVIEW_BYTES", "GROUP_MIN",
]


def build_stories(analysis: Analysis, extra: Extra | None = None, *,
                  group_min: int | None = GROUP_MIN) -> list[ConnectionStory]:
    """Every connection with rows in `analysis`, in stream order."""
    streams = np.unique(analysis.annotations["stream"])
    return [build_story(analysis, int(s), extra, group_min=group_min)
            for s in streams.tolist() if s >= 0]


def build_story(analysis: Analysis, stream: int, extra: Extra | None = None, *,
                group_min: int | None = GROUP_MIN) -> ConnectionStory:
    """The story of one connection (StreamNotFound if the analysis has no such stream)."""
    teller, conn = teller_for(analysis, stream, extra)
    life = teller.life
    steps = teller.steps()
    return ConnectionStory(
        stream=stream,
        client=format_endpoint(conn.client.addr, conn.client.port),
        server=format_endpoint(conn.server.addr, conn.server.port),
        initial=teller.initial, intro=intro_facts(stream, conn, teller.initial, steps),
        steps=steps, items=fold(steps, group_min), summary=summary_facts(life, steps),
        lifecycle=life,
    )
