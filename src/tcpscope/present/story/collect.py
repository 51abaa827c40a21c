"""Reading what a story needs: a pipeline consumer that keeps the chosen connections' rows.

`collect(source, streams)` runs the pipeline once and keeps only what the story
needs: the rows of the chosen streams (records, annotations, both endpoints'
states and events), a few bytes of each payload (to quote it) and the options
of SYNs (to tell a Fast Open cookie from a request); every connection's
lifecycle, with transitions only for the streams told.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ...analysis.engine import DEFAULT_MODE, Analysis
from ...pipeline import Chunk, Collect, Options, Source, run
from ...wire.record import SYN
from .model import PREVIEW_BYTES, Extra

__all__ = ["StoryCollector", "collect"]


class StoryCollector(Collect):
    """Pipeline consumer: the rows of `streams` (None: every stream, or the first
    `max_streams`) in one `Analysis` (`Collect`), and what the story quotes of them
    (`extra`)."""

    def __init__(self, streams: Iterable[int] | None = None, *,
                 max_streams: int | None = None) -> None:
        super().__init__(select=self._rows)
        self.wanted = None if streams is None else np.array(sorted(set(streams)), np.int64)
        self.max_streams = max_streams
        self.extra = Extra()

    def keep_transitions(self) -> Any:
        """Which streams keep their transitions: only those told (`Options.keep_transitions`)."""
        if self.wanted is not None:
            return frozenset(self.wanted.tolist())
        if self.max_streams is not None:
            return self.max_streams.__gt__
        return True

    def _rows(self, chunk: Chunk) -> np.ndarray:
        """The chunk's rows of the chosen streams; their payload starts and SYN options."""
        s = chunk.annotations["stream"]
        sel = s >= 0
        if self.wanted is not None:
            sel &= np.isin(s, self.wanted)
        elif self.max_streams is not None:
            sel &= s < self.max_streams
        idx = np.flatnonzero(sel)
        if idx.size:
            _keep_bytes(chunk.batch, chunk.records[idx], chunk.batch.frame_numbers[idx], idx,
                        self.extra)
        return idx


def collect(source: Source, streams: Iterable[int] | None = None, *, mode: str = DEFAULT_MODE,
            max_streams: int | None = None,
            on_batch: Callable[[int], None] | None = None) -> tuple[Analysis, Extra]:
    """Read a capture once; keep the rows of `streams` (None: all streams, or the first
    `max_streams`), with the lifecycle of every connection.

    `on_batch(frames)` is called after each batch (for a progress display).
    """
    story = StoryCollector(streams, max_streams=max_streams)
    run(source, [story], Options(mode=mode, keep_transitions=story.keep_transitions(),
                                 retire=True), on_batch=on_batch)
    assert story.analysis is not None
    return story.analysis, story.extra


def _keep_bytes(batch: Any, r: np.ndarray, fr: np.ndarray, idx: np.ndarray, extra: Extra) -> None:
    data = batch.data
    base = np.asarray(batch.offset)[idx]
    syn = (r["tcp_flags"] & SYN) != 0
    has_opts = syn & (r["opt_len"] > 0)
    for k in np.flatnonzero(has_opts).tolist():
        off = int(r["opt_off"][k])
        start = int(base[k]) + off
        extra.syn_options[int(fr[k])] = bytes(data[start:start + int(r["opt_len"][k])])
    for k in np.flatnonzero(r["payload_cap"] > 0).tolist():
        start = int(base[k]) + int(r["l4_off"][k]) + int(r["tcp_hlen"][k])
        n = min(int(r["payload_cap"][k]), PREVIEW_BYTES)
        extra.payloads[int(fr[k])] = bytes(data[start:start + n])
