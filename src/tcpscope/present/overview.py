"""A capture at a glance: how many connections, how they opened and closed, what went wrong.

`OverviewCollector` is a pipeline consumer (with an `Audit` inside, for the scans,
floods and failures across connections); once the run has ended, `overview()`
gives an `Overview`: counts of handshake and teardown kinds, failed handshakes
grouped by destination, the anomalies summed over connections, the biggest
transfers, the audit's findings and the most interesting connections, each with
its reasons. It keeps no packet and a bounded number of rows: the `ROWS_KEPT`
most interesting connections (the report's table), the `TOP` biggest and the
first few failed and ordinary ones, besides counters and the audit's bounded
tables; connections are handed to it as they finish (`Options.retire`), so its
memory does not grow with the capture.

`overview_lines(ov, lang)` tells it as text (``tcpscope explain FILE`` without
``--stream`` on a capture of many connections); the HTML report
(present/report/) draws the same `Overview`.
"""
from __future__ import annotations

import math
import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..analysis.audit import Audit, Finding
from ..analysis.connections import decode_all
from ..analysis.lifecycle import Lifecycle
from ..pipeline import Chunk, Result
from ..wire.text import format_endpoint
from .i18n import catalogue, wrap
from .story import Fact

__all__ = ["ConnRow", "Overview", "OverviewCollector", "overview_lines", "TOP"]

#: How many of each list the overview names (destinations, anomalies, transfers, streams).
TOP = 5
#: Findings of the audit the overview quotes.
FINDINGS = 8
#: Rows the overview keeps: the most interesting connections (what the report's table shows).
ROWS_KEPT = 1000
#: Failed and ordinary connections kept as examples (the lowest streams).
EXAMPLES = 8
#: Anomalies that say little on their own: they do not make a connection interesting.
_QUIET = frozenset({"window_update", "keep_alive", "keep_alive_ack", "duplicate_ack"})


@dataclass
class ConnRow:
    """One connection as the overview and the report's table show it."""

    stream: int
    client: str
    server: str
    first_ts: float
    duration: float
    packets: int
    bytes: tuple[int, int]
    handshake: str
    teardown: str
    client_final: str
    server_final: str
    anomalies: dict[str, int]
    score: float = 0.0

    @property
    def anomaly_count(self) -> int:
        return sum(self.anomalies.values())


@dataclass
class Overview:
    name: str
    packets: int
    first_ts: float
    last_ts: float
    #: the `ROWS_KEPT` most interesting connections, in stream order
    rows: list[ConnRow]
    connections: int = 0                          #: all of them
    top_bytes: list[ConnRow] = field(default_factory=list)    #: the biggest, most first
    failed_rows: list[ConnRow] = field(default_factory=list)  #: rejected or unanswered, first
    plain_rows: list[ConnRow] = field(default_factory=list)   #: ordinary conversations, first
    handshakes: Counter = field(default_factory=Counter)
    teardowns: Counter = field(default_factory=Counter)
    #: (destination, handshake kind, connections), most first
    failed: list[tuple[str, str, int]] = field(default_factory=list)
    #: (flag, frames, connections), most frames first
    anomalies: list[tuple[str, int, int]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    damaged: bool = False

    def biggest(self, n: int = TOP) -> list[ConnRow]:
        return self.top_bytes[:n]

    def interesting(self, n: int = TOP) -> list[ConnRow]:
        """The connections most worth reading: more kinds of trouble, then more of it;
        one per server first (a capture's twenty alike transfers are told by one)."""
        ranked = [r for r in sorted(self.rows, key=lambda r: (-r.score, r.stream)) if r.score > 0]
        seen: set[str] = set()
        first = [r for r in ranked if not (r.server in seen or seen.add(r.server))]
        rest = [r for r in ranked if r not in first[:n]]
        return (first[:n] + rest)[:n]


def _score(life: Lifecycle, nbytes: int) -> float:
    loud = {k: v for k, v in life.anomalies.items() if k not in _QUIET}
    trouble = len(loud) * 1000 + min(sum(loud.values()), 999)
    if life.teardown.startswith("rst") and life.handshake not in ("rejected", "unanswered"):
        trouble += 500
    return trouble + math.log10(1 + nbytes) / 10


class OverviewCollector:
    """Pipeline consumer: the audit of every chunk; a row per connection as it finishes
    (`Options.retire`: the engine's and the tracker's state of it are freed then), the
    others at the end."""

    def __init__(self) -> None:
        self.audit = Audit()
        self.packets = 0
        self.result: Result | None = None
        self._count = 0
        self._first_ts, self._last_ts = math.inf, -math.inf
        self._handshakes: Counter = Counter()
        self._teardowns: Counter = Counter()
        # bounded min-heaps: the most interesting rows, the biggest; the first examples
        self._kept: list[tuple[float, int, ConnRow]] = []
        self._big: list[tuple[int, int, ConnRow]] = []
        self._failed_rows: list[ConnRow] = []
        self._plain_rows: list[ConnRow] = []
        self._failed: Counter = Counter()
        self._frames: Counter = Counter()
        self._with_flag: Counter = Counter()

    def feed(self, chunk: Chunk) -> None:
        self.audit.feed(chunk)
        self.packets += len(chunk.records)
        if chunk.finished is not None and chunk.finished.size:
            self._add(chunk.finished, chunk.finished_lifecycles)

    def finish(self, result: Result) -> None:
        self.audit.finish(result)
        self.result = result
        assert result.analyzer is not None and result.tracker is not None
        self._add(result.analyzer.connections(), result.tracker.lifecycles())

    def _add(self, conns: Any, lives: dict[int, Lifecycle]) -> None:
        for c in decode_all(conns):
            life = lives.get(c.stream)
            if life is None:
                continue
            client = format_endpoint(c.client.addr, c.client.port)
            server = format_endpoint(c.server.addr, c.server.port)
            nbytes = life.bytes[0] + life.bytes[1]
            row = ConnRow(c.stream, client, server, life.first_ts, life.duration,
                          sum(life.packets), life.bytes, life.handshake, life.teardown,
                          life.client_final.name, life.server_final.name,
                          dict(life.anomalies), _score(life, nbytes))
            self._keep(row, nbytes)
            if life.handshake in ("rejected", "unanswered"):
                self._failed[(server, life.handshake)] += 1
            for flag, n in life.anomalies.items():
                self._frames[flag] += n
                self._with_flag[flag] += 1

    def _keep(self, row: ConnRow, nbytes: int) -> None:
        """Count a connection; keep its row if it is among the bounded lists."""
        self._count += 1
        self._first_ts = min(self._first_ts, row.first_ts)
        self._last_ts = max(self._last_ts, row.first_ts + row.duration)
        self._handshakes[row.handshake] += 1
        self._teardowns[row.teardown] += 1
        _push(self._kept, (row.score, -row.stream, row), ROWS_KEPT)
        _push(self._big, (nbytes, -row.stream, row), TOP)
        if row.handshake in ("rejected", "unanswered"):
            _first(self._failed_rows, row)
        elif not row.anomaly_count and row.handshake == "3way" and \
                row.teardown in ("4way", "3way"):
            _first(self._plain_rows, row)

    def overview(self) -> Overview:
        res = self.result
        assert res is not None
        frames = self._frames
        report = self.audit.report
        empty = not self._count
        return Overview(
            name=res.name, packets=self.packets,
            first_ts=0.0 if empty else self._first_ts,
            last_ts=0.0 if empty else self._last_ts,
            rows=sorted((r for _, _, r in self._kept), key=lambda r: r.stream),
            connections=self._count,
            top_bytes=[r for _, _, r in sorted(self._big, key=lambda t: (-t[0], -t[1]))],
            failed_rows=list(self._failed_rows), plain_rows=list(self._plain_rows),
            handshakes=self._handshakes, teardowns=self._teardowns,
            failed=[(d, k, n) for (d, k), n in self._failed.most_common()],
            anomalies=[(f, n, self._with_flag[f]) for f, n in frames.most_common()],
            findings=list(report.findings) if report is not None else [],
            damaged=bool(res.damages))


def _push(heap: list, item: tuple, bound: int) -> None:
    """Keep the `bound` greatest items of a min-heap."""
    if len(heap) < bound:
        heapq.heappush(heap, item)
    elif item[:2] > heap[0][:2]:
        heapq.heapreplace(heap, item)


def _first(rows: list[ConnRow], row: ConnRow) -> None:
    """Keep the `EXAMPLES` lowest streams, in order."""
    if len(rows) < EXAMPLES or row.stream < rows[-1].stream:
        rows.append(row)
        rows.sort(key=lambda r: r.stream)
        del rows[EXAMPLES:]


def overview_facts(ov: Overview) -> list[tuple[str, list[Fact]]]:
    """The overview as (section heading id, facts), in the order they are told."""
    out: list[tuple[str, list[Fact]]] = []
    out.append(("overview.title", [Fact("overview.counts", {
        "connections": ov.connections, "packets": ov.packets,
        "duration": max(ov.last_ts - ov.first_ts, 0.0)})]))
    out.append(("overview.opened", [Fact("overview.kind_handshake", {"kind": k, "count": n})
                                    for k, n in ov.handshakes.most_common()]))
    out.append(("overview.closed", [Fact("overview.kind_teardown", {"kind": k, "count": n})
                                    for k, n in ov.teardowns.most_common()]))
    if ov.failed:
        facts = [Fact("overview.failed", {"dest": d, "kind": k, "count": n})
                 for d, k, n in ov.failed[:TOP]]
        if len(ov.failed) > TOP:
            facts.append(Fact("overview.failed_more", {
                "count": len(ov.failed) - TOP, "conns": sum(n for _, _, n in ov.failed[TOP:])}))
        out.append(("overview.failed_title", facts))
    if ov.anomalies:
        out.append(("overview.anomalies", [
            Fact("overview.anomaly", {"flag": f, "frames": n, "count": c})
            for f, n, c in ov.anomalies[:TOP + 1]]))
    out.append(("overview.biggest", [
        Fact("overview.transfer", {"stream": r.stream, "client": r.client, "server": r.server,
                                   "bytes": sum(r.bytes), "packets": r.packets,
                                   "duration": r.duration})
        for r in ov.biggest()]))
    if ov.findings:
        out.append(("overview.findings", [Fact("overview.finding", {"finding": f})
                                          for f in ov.findings[:FINDINGS]]))
    picks = ov.interesting()
    if picks:
        out.append(("overview.interesting", [
            _pick(r) for r in picks]))
    return out


def _pick(r: ConnRow) -> Fact:
    params = {"stream": r.stream, "client": r.client, "server": r.server, "teardown": r.teardown}
    flags = sorted(k for k in r.anomalies if k not in _QUIET)
    return Fact("overview.pick", {**params, "flags": flags}) if flags else \
        Fact("overview.pick_plain", params)


def overview_lines(ov: Overview, lang: str = "en", width: int = 100) -> list[list[tuple[str, Any]]]:
    """The overview as styled lines (present/explain.py's `Line`)."""
    from .audit import sentence

    cat = catalogue(lang)
    lines: list[list[tuple[str, Any]]] = []
    for head, facts in overview_facts(ov):
        if lines:
            lines.append([])
        lines.append([(cat.render(head), "head")])
        for f in facts:
            text = sentence(f.params["finding"], lang) if f.id == "overview.finding" \
                else cat.render(f.id, f.params)
            style = "anom" if f.id in ("overview.anomaly", "overview.failed") else None
            lines.extend([[(ln, style)] for ln in wrap(text, width, "  - ", "    ")])
    if ov.findings and len(ov.findings) > FINDINGS:
        lines.append([(cat.render("overview.findings_more",
                                  {"count": len(ov.findings) - FINDINGS}), "dim")])
    lines.append([])
    lines.append([(cat.render("overview.choose"), "dim")])
    return lines
