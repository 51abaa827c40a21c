"""A connection's story around its packets: the introduction, the summary, folded runs."""
from __future__ import annotations

from datetime import datetime, timezone

from ...analysis.annotation import FLAG, flag_names
from ...analysis.connections import Connection
from ...analysis.lifecycle import Lifecycle
from ...analysis.states import State
from ...wire.text import format_endpoint
from .model import Fact, Run, Step
from .packets import FIN_ACK_MISSED

__all__ = ["intro_facts", "summary_facts", "fold", "run_facts"]


def intro_facts(stream: int, conn: Connection, initial: tuple[State, State],
                steps: list[Step], life: Lifecycle | None = None) -> list[Fact]:
    """Who talks to whom, when, for how long, and the states before the first packet."""
    first, last = steps[0], steps[-1]
    start = datetime.fromtimestamp(first.ts_ns // 1_000_000_000, timezone.utc)
    facts = [
        Fact("conn.title", {"stream": stream,
                            "client": format_endpoint(conn.client.addr, conn.client.port),
                            "server": format_endpoint(conn.server.addr, conn.server.port)}),
        Fact("conn.when", {"packets": len(steps), "duration": (last.ts_ns - first.ts_ns) / 1e9,
                           "start": start.strftime("%Y-%m-%d %H:%M:%S UTC")}),
    ]
    if conn.role_guessed:
        facts.append(Fact("conn.guessed"))
    ci, si = initial
    if ci == State.UNKNOWN and si == State.UNKNOWN:
        facts.append(Fact("conn.initial_unknown"))
    elif life is not None and life.time_wait_reused is not None:
        facts.append(Fact("conn.initial_time_wait", {
            "client": ci.name, "server": si.name, "side": life.time_wait_reused,
            "stream": life.reused_from}))
    elif si == State.CLOSED and ci != State.UNKNOWN:
        facts.append(Fact("conn.initial_closed", {"client": ci.name, "server": si.name}))
    else:
        facts.append(Fact("conn.initial", {"client": ci.name, "server": si.name}))
    return facts


def summary_facts(life: Lifecycle, steps: list[Step], conn: Connection) -> list[Fact]:
    """How it opened, what it carried (each byte counted once, the resent bytes apart), what
    went wrong, how it closed (the lifecycle's kinds)."""
    out: list[Fact] = []
    kind = life.handshake
    if kind == "rejected":
        out.append(Fact("sum.handshake.rejected", {"side": life.rejected_by or "server"}))
    elif kind == "unanswered":
        out.append(Fact("sum.handshake.unanswered", {"count": len(life.syn_frames[0])}))
    else:
        out.append(Fact(f"sum.handshake.{kind.replace('+', '_')}"))
    if life.handshake_rtt is not None:
        out.append(Fact("sum.rtt", {"rtt": life.handshake_rtt}))
    if life.syn_retries:
        out.append(Fact("sum.syn_retries", {"count": life.syn_retries,
                                            "intervals": list(life.syn_intervals),
                                            "backoff": life.syn_backoff}))
    if life.synack_retries:
        out.append(Fact("sum.synack_retries", {"count": life.synack_retries,
                                               "intervals": list(life.synack_intervals),
                                               "backoff": life.synack_backoff}))
    neg = life.negotiated
    feats = [name for name in ("wscale", "sack", "timestamps", "ecn", "tfo") if neg.get(name)]
    if feats:
        out.append(Fact("sum.features", {"features": feats}))
    for i, side in enumerate(("client", "server")):
        segs = sum(1 for s in steps if s.length and s.sender == side)
        sent = (conn.client, conn.server)[i]
        if life.bytes[i] and sent.retrans_bytes:
            out.append(Fact("sum.data_resent", {
                "side": side, "bytes": sent.unique_bytes, "resent": sent.retrans_bytes,
                "segments": segs, "packets": life.packets[i]}))
        elif life.bytes[i]:
            out.append(Fact("sum.data", {"side": side, "bytes": sent.unique_bytes or life.bytes[i],
                                         "segments": segs, "packets": life.packets[i]}))
        elif life.packets[i]:
            out.append(Fact("sum.nodata", {"side": side, "packets": life.packets[i]}))
        else:
            out.append(Fact("sum.silent", {"side": side}))
    if life.anomalies:
        for flag in flag_names(sum(FLAG[f] for f in life.anomalies)):
            frames = [s.frame for s in steps if flag in s.tags]
            params = {"flag": flag, "count": life.anomalies[flag], "frames": frames[:8]}
            if len(frames) > 8:
                out.append(Fact("sum.anomaly_more", {**params, "rest": len(frames) - 8}))
            else:
                out.append(Fact("sum.anomaly", params))
    else:
        out.append(Fact("sum.no_anomalies"))
    td = life.teardown
    fins = [s for s in steps if "F" in s.flags]
    first = fins[0].sender if fins else None
    second = "server" if first == "client" else "client"
    if td in ("4way", "3way", "half_close") and first is not None:
        out.append(Fact(f"sum.teardown.{td}", {"first": first, "second": second}))
    else:
        out.append(Fact(f"sum.teardown.{td}"))
    if life.teardown_inferred == FIN_ACK_MISSED and first is not None:
        frame = next(t.frame for t in life.transitions if t.reason == FIN_ACK_MISSED)
        out.append(Fact("sum.fin_ack_missed", {"first": first, "second": second,
                                               "frame": frame}))
    tw = life.time_wait_side
    if tw == "both":
        out.append(Fact("sum.time_wait_both"))
    elif tw is not None:
        out.append(Fact("sum.time_wait", {"side": tw}))
    out.append(Fact("sum.final", {"client": life.client_final.name,
                                  "server": life.server_final.name}))
    return out


def fold(steps: list[Step], group_min: int | None) -> list[Step | Run]:
    """Runs of at least `group_min` ordinary packets as one `Run` each (None / 0: none)."""
    if not group_min:
        return list(steps)
    out: list[Step | Run] = []
    run: list[Step] = []

    def flush() -> None:
        if len(run) >= group_min:
            out.append(Run(list(run), run_facts(run)))
        else:
            out.extend(run)
        run.clear()

    for s in steps:
        if s.ordinary:
            run.append(s)
        else:
            flush()
            out.append(s)
    flush()
    return out


def run_facts(steps: list[Step]) -> list[Fact]:
    """What a run of ordinary packets carried, each way."""
    facts = [Fact("run.summary", {"first": steps[0].frame, "last": steps[-1].frame,
                                  "count": len(steps)})]
    for side in ("client", "server"):
        data = [s for s in steps if s.sender == side and s.length]
        if data:
            lo = min(s.rel_seq or 0 for s in data)
            hi = max((s.rel_seq or 0) + s.length for s in data)
            facts.append(Fact("run.data", {"side": side, "segments": len(data),
                                           "bytes": sum(s.length for s in data),
                                           "from_seq": lo, "to_seq": hi - 1}))
    for side in ("client", "server"):
        acks = [s for s in steps if s.sender == side and not s.length and s.rel_ack is not None]
        if acks:
            facts.append(Fact("run.acks", {"side": side, "count": len(acks),
                                           "rel_ack": max(s.rel_ack or 0 for s in acks)}))
    return facts
