"""A SYN flood against listeners with tcp_syncookies 0, 1 and 2, audited."""
from __future__ import annotations

import random
import time
from functools import lru_cache
from typing import Any

from ..base import Context, Expectation, Experiment, register
from ..facts import Facts
from ..setups import CLIENT_IP, MAC_C, MAC_S, SERVER_IP, two_hosts
from .flood import BACKLOG, COUNTERS, FAKE_GW, FAKE_GW_MAC, QUEUE, flood_phase

__all__ = ["SynCookies", "spoofed_syns", "audited", "PHASES", "FLOOD", "QUEUE", "COUNTERS"]

SPOOF_NET = "10.201"  #: spoofed sources: 10.201.0.1 ... (exist nowhere)
FLOOD = 300          #: spoofed SYNs per phase
GAP = 0.001          #: seconds between them: 1000 SYNs/s, ten times the audit's threshold
PHASE = 2.0          #: seconds per phase: queued SYN-ACKs are retransmitted at ~1 s
CLIENT_AFTER = 0.2   #: the real client connects this long after the flood begins
CLIENT_TIMEOUT = 1.5  #: ... and gives up after this (two SYNs when nobody answers)
#: name, net.ipv4.tcp_syncookies, port, net.ipv4.tcp_timestamps on the server
PHASES = (("cookies 0", 0, 5000, 1), ("cookies 1", 1, 5001, 1), ("cookies 2", 2, 5002, 2))


def spoofed_syns(port: int, count: int, seed: int, stamped: bool = False) -> list[bytes]:
    """`count` SYN frames to the server from addresses 10.201.x.y (one each), random source
    ports and ISNs, with MSS, SACK-permitted and window scale (and, if `stamped`, every
    other one with a timestamp option too), built with tcpscope's packet builder."""
    from ...wire.builder import IPv4, TCP, Ether, Frame
    from ...wire.options import Mss, Nop, SackPermitted, Timestamp, WindowScale

    rng = random.Random(seed)
    mac = {k: bytes.fromhex(v.replace(":", "")) for k, v in (("c", MAC_C), ("s", MAC_S))}
    plain = (Mss(1460), SackPermitted(), Nop(), WindowScale(7))
    frames = []
    for i in range(count):
        opts = plain
        if stamped and i % 2:
            opts = (Mss(1460), SackPermitted(), Timestamp(rng.randrange(1 << 32), 0), Nop(),
                    WindowScale(7))
        frames.append(Frame(
            Ether(src=mac["c"], dst=mac["s"]),
            IPv4(src=f"{SPOOF_NET}.{i // 250}.{i % 250 + 1}", dst=SERVER_IP,
                 id=rng.randrange(65536)),
            TCP(sport=rng.randrange(1024, 65536), dport=port, seq=rng.randrange(1 << 32),
                flags="S", win=64240, options=opts)).build())
    return frames


@lru_cache(maxsize=4)
def audited(path: str) -> dict[str, list[dict[str, Any]]]:
    """The audit's findings of a capture, by kind (as dicts)."""
    from ...present.audit import audit_file

    out: dict[str, list[dict[str, Any]]] = {}
    for f in audit_file(path).findings:
        out.setdefault(f.kind, []).append(f.as_dict())
    return out


def _on_port(f: Facts, kind: str, port: int) -> dict[str, Any] | None:
    hits = [d for d in audited(str(f.path)).get(kind, []) if d.get("port") == port]
    return hits[0] if hits else None


@register
class SynCookies(Experiment):
    name = "syn-cookies"
    title = "a SYN flood audited: tcp_syncookies 0, 1 and 2, and what the wire shows of cookies"
    listing_limit = 16
    does = f"""
    Three listeners with a small backlog ({BACKLOG}) in the server's namespace, one after
    the other, each with a different net.ipv4.tcp_syncookies: 0 (port 5000), 1 (5001) and 2
    (5002, with net.ipv4.tcp_timestamps = 2: timestamps without the random per-connection
    offset). Each receives {FLOOD} SYNs from spoofed addresses ({SPOOF_NET}.x.y, one SYN
    each, {GAP * 1000:.0f} ms apart, no timestamp option; on 5002 every other one carries
    a timestamp), built with tcpscope's packet builder
    and sent from the client's namespace with an AF_PACKET socket; the server's route to
    them leads nowhere, so no one ever answers its SYN-ACKs. {CLIENT_AFTER} s into each flood
    a real client (10.200.1.1) connects, sends 6 bytes and reads the echo. Each phase lasts
    {PHASE} s; the SYN-cookie and listen-queue counters are read before and after it and
    `ss -tan state syn-recv` runs every 0.25 s. Then `tcpscope audit` reads the capture.
    """
    why = """
    A SYN that gets a SYN-ACK leaves a request in the listener's SYN queue until the
    handshake completes, and its SYN-ACK is retransmitted (1 s, 3 s, ... later) while it
    waits. Spoofed SYNs never complete: the queue fills. Without cookies later SYNs are
    dropped, the real client's too. With cookies (RFC 4987 §3.6) the listener answers a SYN
    it cannot queue with a SYN-ACK whose ISN encodes the connection, and forgets it: such a
    SYN-ACK is never retransmitted, and, having no request to keep the SYN's options in, it
    drops SACK and window scaling unless the SYN carried timestamps, whose low six bits then
    hold them (visible on the wire only without the random timestamp offset). The audit
    reads exactly these marks.
    """
    look_at = """
    `tcp.flags.syn == 1 && tcp.flags.ack == 1`: cookie SYN-ACKs carry only the MSS option;
    queued ones carry SACK and window scale and come again ~1 s later.
    """

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        h = two_hosts(topo)
        topo.neigh(h.server, FAKE_GW, FAKE_GW_MAC, "s0")
        topo.route(h.server, f"{SPOOF_NET}.0.0/16", "via", FAKE_GW)
        ctx.say(f"server: per phase, set tcp_syncookies (and tcp_timestamps), listen(backlog "
                f"{BACKLOG}) on {h.server_ip}:PORT, accept whoever completes, echo 6 bytes")
        ctx.say(f"flooder (client's namespace, AF_PACKET on c0): {FLOOD} SYNs from "
                f"{SPOOF_NET}.x.y, {GAP * 1000:.0f} ms apart")
        ctx.say(f"real client ({CLIENT_IP}), {CLIENT_AFTER} s later: connect (timeout "
                f"{CLIENT_TIMEOUT} s), send b'hello\\n', read the echo")
        results: dict[str, dict] = {}
        ctx.params["phases"] = results
        with ctx.capture("s0", "tcp portrange 5000-5002", ns=h.server), \
                ctx.sample_ss(h.server, "ss", ["-tan", "state", "syn-recv"], every=0.25,
                              max_seconds=3 * PHASE + 5):
            for name, cookies, port, stamps in PHASES:
                topo.sysctl(h.server, "net.ipv4.tcp_syncookies", cookies)
                topo.sysctl(h.server, "net.ipv4.tcp_timestamps", stamps)
                res: dict[str, Any] = {"port": port, "cookies": cookies, "timestamps": stamps,
                                       "start": time.time()}
                results[name] = res
                frames = spoofed_syns(port, FLOOD, seed=port, stamped=stamps == 2)
                shown = flood_phase(ctx, h, res, frames, gap=GAP, client_after=CLIENT_AFTER,
                                    client_timeout=CLIENT_TIMEOUT, seconds=PHASE)
                ctx.kernel_notes.append(f"{name}: {shown or 'counters unchanged'}; real client: "
                                        f"{res.get('client', '?')}")
        ctx.kernel["phases"] = results

    def expectations(self, ctx: Context) -> list[Expectation]:
        phases = ctx.params.get("phases", {})

        def counter(name: str, key: str) -> int:
            return phases.get(name, {}).get("counters", {}).get(f"TcpExt.{key}", 0)

        def flood(name: str, port: int):
            def check(f: Facts) -> tuple[bool, str]:
                d = _on_port(f, "syn_flood", port)
                if d is None:
                    return False, f"no syn_flood finding on port {port}"
                ok = d["count"] >= FLOOD and d["peak_rate"] >= 100 and d["sources"] >= FLOOD * 0.9
                return ok, (f"syn_flood on :{port}: {d['count']} incomplete attempts from "
                            f"~{d['sources']} sources, peak {d['peak_rate']}/s; kept "
                            f"{d['half_open_kept']}, stateless {d['answered_stateless']}, "
                            f"unanswered {d['unanswered']}")
            return check

        def queue_off(f: Facts) -> tuple[bool, str]:
            d = _on_port(f, "syn_flood", 5000) or {}
            drops = counter("cookies 0", "TCPReqQFullDrop")
            kept, lost = d.get("half_open_kept"), d.get("unanswered")
            ok = kept == QUEUE and lost == FLOOD - QUEUE + 1 and drops >= lost
            return ok, (f"audit: {kept} requests kept, {lost} attempts unanswered; kernel: "
                        f"TCPReqQFullDrop +{drops} (SYNs)")

        def client_off(f: Facts) -> tuple[bool, str]:
            d = _on_port(f, "syn_flood", 5000) or {}
            ok = d.get("legit_completed") == 0 and d.get("legit_failed") == 1
            return ok, (f"legit completed {d.get('legit_completed')}, failed "
                        f"{d.get('legit_failed')}; {phases.get('cookies 0', {}).get('client')}")

        def no_cookies_off(f: Facts) -> tuple[bool, str]:
            d = _on_port(f, "syn_cookies", 5000)
            sent = counter("cookies 0", "SyncookiesSent")
            return d is None and sent == 0, f"syn_cookies on :5000: {d is not None}; " \
                                            f"SyncookiesSent +{sent}"

        def cookies(name: str, port: int, exact: bool):
            def check(f: Facts) -> tuple[bool, str]:
                d = _on_port(f, "syn_cookies", port)
                fl = _on_port(f, "syn_flood", port) or {}
                sent, recv = counter(name, "SyncookiesSent"), counter(name, "SyncookiesRecv")
                if d is None:
                    return False, f"no syn_cookies finding on :{port}; SyncookiesSent +{sent}"
                seen = d["count"]
                if exact:   # half the SYNs had timestamps: their cookies are in the TSval
                    ok = seen == sent and d["completed_via_cookie"] == recv == 1 and \
                        set(d["marks"]) == {"options_dropped", "ts_encoded"}
                else:   # the real client's cookie is hidden by its timestamp offset
                    ok = seen <= sent <= seen + fl.get("legit_completed", 0) and recv == 1
                return ok, (f"audit: {seen} cookie SYN-ACKs (options dropped "
                            f"{d['options_dropped']}, timestamp-encoded {d['ts_encoded']}, "
                            f"never retransmitted {d['never_retransmitted']}), completed "
                            f"through a cookie {d['completed_via_cookie']}; kernel: "
                            f"SyncookiesSent +{sent}, SyncookiesRecv +{recv}")
            return check

        def client_on(name: str, port: int):
            def check(f: Facts) -> tuple[bool, str]:
                d = _on_port(f, "syn_flood", port) or {}
                ok = d.get("legit_completed") == 1 and d.get("legit_failed") == 0
                return ok, (f"legit completed {d.get('legit_completed')}, failed "
                            f"{d.get('legit_failed')}; {phases.get(name, {}).get('client')}")
            return check

        return [
            Expectation("cookies 0: the audit finds a SYN flood on :5000", flood("cookies 0", 5000)),
            Expectation(f"cookies 0: the listener kept {QUEUE} requests (their SYN-ACKs are "
                        "retransmitted) and answered nothing else; the kernel counts the "
                        "dropped SYNs", queue_off, source="kernel"),
            Expectation("cookies 0: the real client could not get in", client_off),
            Expectation("cookies 0: no SYN cookies, on the wire or in the kernel",
                        no_cookies_off, source="kernel"),
            Expectation("cookies 1: a SYN flood on :5001", flood("cookies 1", 5001)),
            Expectation("cookies 1: the audit sees the cookie SYN-ACKs (SACK and window scale "
                        "dropped, never retransmitted); the kernel's SyncookiesSent agrees",
                        cookies("cookies 1", 5001, exact=False), source="kernel"),
            Expectation("cookies 1: the real client got through", client_on("cookies 1", 5001)),
            Expectation("cookies 2: a SYN flood on :5002", flood("cookies 2", 5002)),
            Expectation("cookies 2: every SYN-ACK is a cookie, the real client's too; those "
                        "answering timestamped SYNs carry the options in the TSval's low "
                        "bits, the others drop SACK and window scale; the audit's count equals "
                        "SyncookiesSent, and the connection that came in through a cookie "
                        "equals SyncookiesRecv", cookies("cookies 2", 5002, exact=True),
                        source="kernel"),
            Expectation("cookies 2: the real client got through", client_on("cookies 2", 5002)),
        ]
