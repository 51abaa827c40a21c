"""The hindsight fixtures are internally consistent: what each truth record says (the kernel's
counters and socket states, the relay's log, the applications' log: tests/hindsight_truth.py)
is what its captures show, packet by packet.

Only tcpscope's reader and dissector are used here (records: addresses, ports, flags, sequence
numbers, options), never its analysis: these fixtures are the ground truth the analysis is
held to elsewhere, so they must stand on their own. Each test takes the facts a truth claims
and finds them on the wire:

- the record itself: schema, captures, every class of issue 10 covered, the kernel's state
  sequences are paths of the RFC 9293 diagram;
- bytes: the unique payload of each direction in the capture before the relay is what the
  application wrote; the data segments sent again are as many as the kernel's TcpRetransSegs;
- handshakes: SYN and SYN-ACK copies (the kernel's TCPSynRetrans), what the relay dropped;
- loss: every dropped segment is repaired, every delayed original arrives late, the tap
  misses exactly the hidden frames; the ACK after a long backoff echoes the last copy;
- signals: window probes and keep-alives (TCPWinProbe, TCPKeepAlive), challenge ACKs,
  D-SACK blocks, duplicate frames, CE / ECE / CWR, URG, segments above the MSS, resets,
  Nagle stalls, think time, roles, TFO cookies, SYN cookies.
"""
from __future__ import annotations

import itertools
import socket
from collections import Counter
from dataclasses import dataclass
from functools import cache

import pytest
from hindsight_truth import CLASSES, Conn, Truth, load, names

from tcpscope.capture import open_capture
from tcpscope.wire import OPTION, dissect_batch

NAMES = names()
pytestmark = pytest.mark.skipif(not NAMES, reason="no fixtures in fixtures/hindsight")
MOD = 1 << 32
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = (1 << i for i in range(8))


# --------------------------------------------------------------------------- packets


@dataclass(frozen=True)
class Pkt:
    frame: int
    ts_ns: int
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    length: int
    ip_id: int
    ecn: int
    win: int
    urg: int
    tsval: int | None
    tsecr: int | None
    sack: tuple[tuple[int, int], ...]
    options: bytes

    @property
    def key(self) -> tuple:
        return (self.src, self.sport, self.dst, self.dport)

    @property
    def pure_ack(self) -> bool:
        return self.length == 0 and self.flags & (SYN | FIN | RST) == 0 and bool(self.flags & ACK)

    def option(self, kind: int) -> bytes | None:
        """The value of the first TCP option of `kind`, or None."""
        o, i = self.options, 0
        while i < len(o) and o[i] != 0:
            if o[i] == 1:
                i += 1
                continue
            if i + 1 >= len(o) or o[i + 1] < 2:
                return None
            if o[i] == kind:
                return o[i + 2: i + o[i + 1]]
            i += o[i + 1]
        return None


@cache
def packets(path) -> tuple[Pkt, ...]:
    out = []
    with open_capture(path) as cap:
        for batch in cap:
            recs = dissect_batch(batch)
            frames = batch.frame_numbers
            for i, r in enumerate(recs):
                if r["ip_version"] != 4 or r["ip_proto"] != 6 or r["l4_off"] == 0xFFFF:
                    continue
                n = min(int(r["sack_count"]), len(r["sack"]) // 2)
                raw = batch.frame_bytes(i)
                out.append(Pkt(
                    int(frames[i]), int(batch.ts_ns[i]), socket.inet_ntoa(bytes(r["src"][:4])),
                    int(r["sport"]), socket.inet_ntoa(bytes(r["dst"][:4])), int(r["dport"]),
                    int(r["seq"]), int(r["ack"]), int(r["tcp_flags"]), int(r["payload_len"]),
                    int(r["ip_id"]), int(r["ip_tos"]) & 3, int(r["win"]), int(r["urg"]),
                    int(r["ts_val"]) if r["opt_present"] & OPTION["TIMESTAMP"] else None,
                    int(r["ts_ecr"]) if r["opt_present"] & OPTION["TIMESTAMP"] else None,
                    tuple((int(r["sack"][2 * k]), int(r["sack"][2 * k + 1])) for k in range(n)),
                    raw[int(r["opt_off"]): int(r["opt_off"]) + int(r["opt_len"])]))
    return tuple(out)


def at(t: Truth, iface: str) -> tuple[Pkt, ...]:
    """The packets of the capture on `iface` (a0: the client's side, b0: the server's)."""
    return next(packets(c.path) for c in t.captures.values() if c.iface == iface)


def of(pkts, c: Conn, d: str | None = None) -> list[Pkt]:
    """The packets of connection c (in its time window), of direction d (c2s / s2c) or both."""
    cs, ss = (c.client, c.client_port, c.server, c.server_port), (c.server, c.server_port, c.client, c.client_port)
    want = {"c2s": (cs,), "s2c": (ss,), None: (cs, ss)}[d]
    return [p for p in pkts if p.key in want and c.in_window(p.ts_ns)]


def upstream(t: Truth, d: str) -> str:
    """The interface whose capture saw every frame of direction d as its sender sent it."""
    return "a0" if d == "c2s" else "b0"


def downstream(t: Truth, d: str) -> str:
    return "b0" if d == "c2s" else "a0"


def unique_bytes(pkts: list[Pkt]) -> int:
    """Payload bytes covered at least once (sequence space, SYN data included)."""
    spans = sorted(((p.seq + bool(p.flags & SYN)) % MOD, p.length) for p in pkts if p.length)
    if not spans:
        return 0
    base = spans[0][0]
    ranges = sorted(((s - base) % MOD, (s - base) % MOD + n) for s, n in spans)
    total, end = 0, None
    for lo, hi in ranges:
        if end is None or lo > end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    return total


def repeats(pkts: list[Pkt]) -> list[Pkt]:
    """Data segments that start below the highest sequence number sent before them."""
    out, base, highest = [], None, None
    for p in pkts:
        if not p.length:
            continue
        base = p.seq if base is None else base
        rel = (p.seq - base) % MOD
        if highest is not None and rel < highest:
            out.append(p)
        highest = rel + p.length if highest is None else max(highest, rel + p.length)
    return out


def with_fact(key: str, level: str = "conn") -> list:
    """(name, conn index) of every connection (or name, for fixture-wide facts) claiming `key`."""
    if level == "fixture":
        return [n for n in NAMES if key in load(n).facts]
    return [pytest.param(n, i, id=f"{n}-{i}") for n in NAMES
            for i, c in enumerate(load(n).conns) if key in c.facts]


# --------------------------------------------------------------------------- the record


@pytest.mark.parametrize("name", NAMES)
def test_record(name: str) -> None:
    t = load(name)
    assert t.classes and set(t.classes) <= set(CLASSES)
    assert t.tools["kernel"] and "tcpdump version" in t.tools["tcpdump"]
    assert {"sender", "receiver"} <= set(t.captures)
    for c in t.captures.values():
        assert len(packets(c.path)) == c.frames, c.side
    assert t.conns, "no connection"
    started = t.raw["marks"]["captures_started_ns"]
    for s in t.samples:
        assert started <= s.t_ns <= s.t_end_ns <= t.raw["marks"]["captures_stopping_ns"], s.label
    relay = t.relay or {}
    assert not relay.get("unfired_rules")


def test_every_class_has_a_fixture() -> None:
    covered = {k for n in NAMES for k in load(n).classes}
    assert covered == set(CLASSES), f"classes without a fixture: {set(CLASSES) - covered}"


#: RFC 9293 §3.3.2's diagram (CLOSED also for "no socket": a refused SYN, an aborted connection)
RFC9293 = {
    "CLOSED": {"LISTEN", "SYN_SENT"},
    "LISTEN": {"SYN_RECEIVED", "SYN_SENT", "CLOSED"},
    "SYN_SENT": {"SYN_RECEIVED", "ESTABLISHED", "CLOSED"},
    "SYN_RECEIVED": {"ESTABLISHED", "FIN_WAIT_1", "LISTEN", "CLOSED"},
    "ESTABLISHED": {"FIN_WAIT_1", "CLOSE_WAIT", "CLOSED"},
    "FIN_WAIT_1": {"FIN_WAIT_2", "CLOSING", "TIME_WAIT", "CLOSED"},
    "FIN_WAIT_2": {"TIME_WAIT", "CLOSED"},
    "CLOSING": {"TIME_WAIT", "CLOSED"},
    "TIME_WAIT": {"CLOSED"},
    "CLOSE_WAIT": {"LAST_ACK", "CLOSED"},
    "LAST_ACK": {"CLOSED"},
}


def reachable(a: str, b: str) -> bool:
    seen, todo = {a}, [a]
    while todo:
        for n in RFC9293[todo.pop()]:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return b in seen


@pytest.mark.parametrize("name", NAMES)
def test_kernel_states_are_rfc9293_paths(name: str) -> None:
    """What ss saw, sample after sample, can be joined by paths of the RFC 9293 diagram."""
    for c in load(name).conns:
        for side in ("client", "server"):
            path = c.path(side)
            for a, b in itertools.pairwise(path):
                assert reachable(a, b), f"{c.flow} {side}: {a} -> {b} in {path}"


# --------------------------------------------------------------------------- bytes and resends


@pytest.mark.parametrize("name", NAMES)
def test_unique_bytes_are_what_the_applications_wrote(name: str) -> None:
    t = load(name)
    for c in t.conns:
        for d, want in (("c2s", c.bytes_c2s), ("s2c", c.bytes_s2c)):
            if want is not None:
                assert unique_bytes(of(at(t, upstream(t, d)), c, d)) == want, (c.flow, d)


@pytest.mark.parametrize("name,i", with_fact("retrans_segments_c2s"))
def test_resends_are_the_kernels(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    rep = repeats(of(at(t, "a0"), c, "c2s"))
    assert len(rep) == c.facts["retrans_segments_c2s"] == t.counter("A", "TcpRetransSegs")
    if "retrans_bytes_c2s" in c.facts:
        assert sum(p.length for p in rep) == c.facts["retrans_bytes_c2s"]


# --------------------------------------------------------------------------- handshakes


def count(pkts, pred) -> int:
    return sum(1 for p in pkts if pred(p))


def is_syn(p: Pkt) -> bool:
    return p.flags & (SYN | ACK) == SYN


def is_synack(p: Pkt) -> bool:
    return p.flags & (SYN | ACK) == SYN | ACK


@pytest.mark.parametrize("name,i", with_fact("synack_retransmissions"))
def test_synack_copies(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    assert count(of(at(t, "b0"), c, "s2c"), is_synack) == 1 + c.facts["synack_retransmissions"]


@pytest.mark.parametrize("name,i", with_fact("syn_retransmissions"))
def test_syn_copies(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    sent = count(of(at(t, "a0"), c, "c2s"), is_syn)
    assert sent == 1 + c.facts["syn_retransmissions"]
    assert sent - count(of(at(t, "b0"), c, "c2s"), is_syn) == c.facts["syns_dropped"]
    if "server_segments_in" in c.facts:  # a host that never answers: nothing reached it
        assert not of(at(t, "b0"), c) and c.facts["server_segments_in"] == 0
        assert c.path("server") == ["LISTEN"] and c.path("client")[-1] == "CLOSED"


@pytest.mark.parametrize("name,i", with_fact("fins_crossed"))
def test_fins_cross(name: str, i: int) -> None:
    """Each FIN left before its sender had the other's: its ACK does not cover the other FIN."""
    t = load(name)
    c = t.conns[i]
    for iface, d in (("a0", "c2s"), ("b0", "s2c")):
        mine = next(p for p in of(at(t, iface), c, d) if p.flags & FIN)
        other = next(p for p in of(at(t, iface), c, "s2c" if d == "c2s" else "c2s") if p.flags & FIN)
        assert mine.ack == other.seq, "the FIN acknowledges everything but the other FIN"
        assert mine.ts_ns < other.ts_ns, "sent before the other FIN arrived"
    assert c.path("client") == c.path("server") == ["ESTABLISHED", "FIN_WAIT_1", "CLOSING", "TIME_WAIT"]


@pytest.mark.parametrize("name,i", with_fact("handshake_acks_dropped"))
def test_handshake_acks_lost(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]

    def acks_before_data(pkts: list[Pkt]) -> int:
        first = next(p.ts_ns for p in pkts if p.length)
        return count(pkts, lambda p: p.pure_ack and p.ts_ns < first)

    lost = acks_before_data(of(at(t, "a0"), c, "c2s")) - acks_before_data(of(at(t, "b0"), c, "c2s"))
    assert lost == c.facts["handshake_acks_dropped"]
    assert c.path("server")[:2] == ["SYN_RECEIVED", "ESTABLISHED"]


@pytest.mark.parametrize("name,i", with_fact("defer_accept_drops"))
def test_deferred_accept(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    rx = of(at(t, "b0"), c)
    assert [(p.flags, p.length) for p in rx[:5]] == [(SYN, 0), (SYN | ACK, 0), (ACK, 0), (SYN | ACK, 0), (ACK, 0)]
    assert c.facts["defer_accept_drops"] >= 1 and not c.bytes_c2s


@pytest.mark.parametrize("name,i", with_fact("syn_to_time_wait") + with_fact("syn_from_time_wait"))
def test_time_wait_reuse(name: str, i: int) -> None:
    t = load(name)
    old, new = t.conns[i - 1], t.conns[i]
    assert old.flow == new.flow and old.to_ns == new.from_ns
    holder = new.facts.get("syn_to_time_wait") or new.facts["syn_from_time_wait"]
    assert old.path(holder)[-1] == "TIME_WAIT"
    syns = [p for p in of(at(t, "b0"), new, "c2s") if is_syn(p)]
    old_fin = max(p.seq for p in of(at(t, "b0"), old, "c2s") if p.flags & FIN)
    assert len(syns) == 1 and (syns[0].seq - old_fin) % MOD < MOD // 2, "the new ISN is above the old"
    if holder == "client":
        assert t.facts["tw_recycled"] == 1


# --------------------------------------------------------------------------- half-open


@pytest.mark.parametrize("name,i", with_fact("port_open"))
def test_syn_scan(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    seen = [(p.flags, p.src == c.client) for p in of(at(t, "b0"), c)]
    if c.facts["port_open"]:
        assert seen == [(SYN, True), (SYN | ACK, False), (RST, True)]
        assert c.facts["half_open"] and "ESTABLISHED" not in c.path("server") + c.path("client")
    else:
        assert seen == [(SYN, True), (RST | ACK, False)]
    assert t.facts["request_sockets_reset"] == count(t.conns, lambda x: x.facts["half_open"])


@pytest.mark.parametrize("name", with_fact("syncookies", "fixture"))
def test_syn_cookies(name: str) -> None:
    t = load(name)
    rx = at(t, "b0")
    raw_ts = t.raw["sysctls"]["B"]["tcp_timestamps"] == "2"  # no random offset: TSval as kept
    cookies = 0
    for c in t.conns:
        syn = next(p for p in of(rx, c, "c2s") if is_syn(p))
        synacks = [p for p in of(rx, c, "s2c") if is_synack(p)]
        if c.facts["syn_cookie"]:
            cookies += 1
            assert len(synacks) == 1, f"{c.flow}: a cookie's SYN-ACK is never resent"
            if raw_ts:  # Linux keeps the SYN's options in the cookie's TSval: wscale | sack << 4 | ecn << 5
                wscale, sack_ok = syn.option(3), syn.option(4) is not None
                assert synacks[0].tsval & 0x3F == (wscale[0] if wscale else 0xF) | sack_ok << 4
        else:
            assert len(synacks) >= 2, f"{c.flow}: a queued SYN-ACK is resent"
    assert cookies == t.facts["syncookies"]["sent"]
    synacks = count(rx, is_synack)
    assert synacks - len(t.conns) == t.facts["synack_retransmissions"], "only queued SYN-ACKs are resent"
    real = [c for c in t.conns if not c.facts["spoofed"]]
    assert t.facts["syncookies"]["recv"] == len(real) == 1 and real[0].facts["syn_cookie"]
    assert count(of(rx, real[0], "c2s"), lambda p: p.length) >= 1


# --------------------------------------------------------------------------- loss, reordering, misses


@pytest.mark.parametrize("name,i", with_fact("lost_upstream"))
def test_losses_reordering_and_capture_misses(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    up, down = of(at(t, "a0"), c, "c2s"), of(at(t, "b0"), c, "c2s")
    isn = next(p.seq for p in up if is_syn(p))
    for lost in c.facts["lost_upstream"]:
        seq = (isn + lost["rel_seq"]) % MOD
        assert count(up, lambda p, seq=seq: p.seq == seq and p.length) >= 2, "sent, then repaired"
        assert lost["ip_id"] not in {p.ip_id for p in down}, "the original never arrived"
        assert count(down, lambda p, seq=seq: p.seq == seq and p.length) >= 1, "a repair arrived"
    for late in c.facts["reordered"]:
        k = next(j for j, p in enumerate(down) if p.ip_id == late["ip_id"])
        before = down[k - late["overtaken_by"]: k]  # arrived before it, sent after it (IP ID)
        assert len(before) == late["overtaken_by"]
        assert all(0 < (p.ip_id - late["ip_id"]) % (1 << 16) < 1 << 15 for p in before)
    tap = packets(t.captures["tap"].path)
    missed = c.facts["capture_misses"]["tap"]
    assert len(tap) == len(at(t, "b0")) - len(missed)
    tap_ids = Counter((p.src, p.ip_id) for p in tap)
    for m in missed:
        src = c.client if m["dir"] == "c2s" else c.server
        assert tap_ids[(src, m["ip_id"])] == 0


@pytest.mark.parametrize("name,i", with_fact("ack_match"))
def test_ack_answers_the_last_copy(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    up = of(at(t, "a0"), c)
    copies = [p for p in up if p.src == c.client and p.length]
    copies = [p for p in copies if p.seq == copies[0].seq]
    assert len(copies) == c.facts["copies_sent"]
    assert len([p for p in of(at(t, "b0"), c, "c2s") if p.length and p.seq == copies[0].seq]) == \
        c.facts["copies_sent"] - c.facts["copies_dropped"]
    m = c.facts["ack_match"]
    ack = next(p for p in up if p.src == c.server and (p.ack - copies[0].seq) % MOD >= copies[0].length)
    assert ack.tsecr == m["tsecr"] == copies[m["answers_copy"] - 1].tsval
    gaps = [(b.ts_ns - a.ts_ns) / 1e6 for a, b in itertools.pairwise(copies)]
    assert all(abs(g - w) < 5 for g, w in zip(gaps, c.facts["intervals_ms"]))
    assert all(b >= 1.8 * a for a, b in itertools.pairwise(gaps[1:])), f"RTOs double: {gaps}"
    assert (ack.ts_ns - copies[-1].ts_ns) / 1e6 < 20 and not m["delayed_ack"]


@pytest.mark.parametrize("name,i", with_fact("ack_delays"))
def test_delayed_acks(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    up = of(at(t, "a0"), c)
    for want in c.facts["ack_delays"]:
        data = next(p for p in up if p.src == c.client and p.length and p.ts_ns <= want["data_t_ns"]
                    and abs(p.ts_ns - want["data_t_ns"]) < 5e6)
        ack = next(p for p in up if p.src == c.server and p.ts_ns > data.ts_ns
                   and (p.ack - data.seq) % MOD >= data.length)
        assert abs((ack.ts_ns - data.ts_ns) / 1e6 - want["delay_ms"]) < 5
        assert 20 <= want["delay_ms"] <= 500 and ack.length == 0
    assert c.facts["delayed_acks_s2c"] >= len(c.facts["ack_delays"])


@pytest.mark.parametrize("name,i", with_fact("nagle_stalls"))
def test_nagle_stalls(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    up = of(at(t, "a0"), c)
    writes = [p for p in up if p.src == c.client and p.length == 60]
    stalls = 0
    for a, b in zip(writes[0::2], writes[1::2]):
        acks = [p for p in up if p.src == c.server and a.ts_ns < p.ts_ns < b.ts_ns and p.pure_ack
                and (p.ack - a.seq) % MOD >= a.length]
        stalls += bool(acks) and (b.ts_ns - a.ts_ns) / 1e6 >= 20
    assert stalls == c.facts["nagle_stalls"] and not c.facts["nodelay"]


# --------------------------------------------------------------------------- probes


def probes(pkts: list[Pkt], c: Conn) -> list[Pkt]:
    """Client segments of 0 or 1 byte starting one below the server's latest ACK."""
    una, out = None, []
    for p in pkts:
        if p.src == c.server and p.flags & ACK:
            una = p.ack
        elif p.src == c.client and una is not None and p.length <= 1 and (una - p.seq) % MOD == 1 \
                and not p.flags & (SYN | FIN | RST):
            out.append(p)
    return out


@pytest.mark.parametrize("name,i", with_fact("probes"))
def test_window_probes_and_keepalives(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    up = of(at(t, "a0"), c)
    found = probes(up, c)
    assert len(found) == len(c.facts["probes"])
    assert sorted({p.length for p in found}) == c.facts["probe_bytes"]
    zero = [p for p in of(at(t, "b0"), c, "s2c") if p.win == 0]
    if c.facts["window_probes_c2s"]:
        assert len(found) == c.facts["window_probes_c2s"] and c.facts["keepalives_c2s"] == 0
        assert len(zero) == c.facts["zero_window_segments_s2c"] and zero[0].ts_ns < found[0].ts_ns
        gaps = [(b.ts_ns - a.ts_ns) / 1e6 for a, b in itertools.pairwise(found)]
        assert all(b >= 1.8 * a for a, b in itertools.pairwise(gaps)), f"persist backoff doubles: {gaps}"
    else:
        assert len(found) == c.facts["keepalives_c2s"] and not zero
        assert all(900 <= g <= 1200 for g in c.facts["probe_intervals_ms"])


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("name,i", with_fact("tlp"))
def test_tail_loss_probes(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    assert c.facts["tlp"] == t.counter("A", "TcpExtTCPLossProbes")
    if c.facts.get("probe"):
        up = of(at(t, "a0"), c, "c2s")
        rep = repeats(up)
        assert len(rep) == 1 and c.facts["rto"] == 0
        isn = next(p.seq for p in up if is_syn(p))
        tail = max((p for p in up if p.length), key=lambda p: (p.seq - isn) % MOD)
        assert rep[0].seq == tail.seq, "the probe resends the last segment"
        assert (rep[0].seq - isn) % MOD == c.facts["probe"]["rel_seq"]


@pytest.mark.parametrize("name,i", with_fact("challenge_acks"))
def test_challenge_acks(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    rx = of(at(t, "b0"), c)
    answered = 0
    for inj in c.facts["injected"]:
        k = next(j for j, p in enumerate(rx) if p.src == c.client and p.seq == inj["seq"]
                 and p.flags == {"S": SYN, "R": RST}[inj["flags"]])
        nxt = rx[k + 1] if k + 1 < len(rx) else None
        got = nxt is not None and nxt.src == c.server and nxt.pure_ack and nxt.ts_ns - rx[k].ts_ns < 100e6
        assert got == inj["challenge_ack"], inj["what"]
        answered += got
    assert answered == c.facts["challenge_acks"]
    assert c.path("client")[0] == c.path("server")[0] == "ESTABLISHED"


def dsack(p: Pkt) -> bool:
    """RFC 2883: the first SACK block is below the cumulative ACK or inside the second block."""
    if not p.sack:
        return False
    (l1, r1) = p.sack[0]
    if (p.ack - r1) % MOD < MOD // 2:
        return True
    return len(p.sack) > 1 and (l1 - p.sack[1][0]) % MOD < MOD // 2 and (p.sack[1][1] - r1) % MOD < MOD // 2


@pytest.mark.parametrize("name,i", with_fact("dsack"))
def test_dsack_blocks(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    sent = [p for p in of(at(t, "b0"), c, "s2c") if dsack(p)]
    assert len(sent) == c.facts["dsack"]["sent_s2c"]
    assert len([p for p in of(at(t, "a0"), c, "s2c") if dsack(p)]) == c.facts["dsack"]["received_c2s"]


@pytest.mark.parametrize("name,i", with_fact("duplicate_frames"))
def test_duplicate_frames(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    for dup in c.facts["duplicate_frames"]:
        src = c.client if dup["dir"] == "c2s" else c.server
        ident = (src, dup["ip_id"])
        assert count(of(at(t, upstream(t, dup["dir"])), c), lambda p, i=ident: (p.src, p.ip_id) == i) == 1
        copies = [p for p in of(at(t, downstream(t, dup["dir"])), c) if (p.src, p.ip_id) == ident]
        assert len(copies) == 2 and copies[0].seq == copies[1].seq and copies[0].ack == copies[1].ack
    for spur in c.facts["spurious_retransmissions"]:
        isn = next(p.seq for p in of(at(t, "a0"), c, "c2s") if is_syn(p))
        rx = [p for p in of(at(t, "b0"), c, "c2s") if p.seq == (isn + spur["rel_seq"]) % MOD and p.length]
        assert len(rx) == 2 and rx[0].ip_id > rx[1].ip_id, "the resend arrives before the held original"


@pytest.mark.parametrize("name,i", with_fact("ecn"))
def test_ecn(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    e = c.facts["ecn"]
    up, down = of(at(t, "a0"), c), of(at(t, "b0"), c)
    assert count(down, lambda p: p.src == c.client and p.ecn == 3) == e["ce"] == c.facts["ce_received"]
    assert count(up, lambda p: p.ecn == 3) == 0, "the relay marks, the sender does not"
    assert count(up, lambda p: p.src == c.server and p.flags & ECE and not p.flags & SYN) == e["ece"]
    assert count(up, lambda p: p.src == c.client and p.flags & CWR and not p.flags & SYN) == e["cwr"]
    first_ce = next(p for p in down if p.ecn == 3)
    assert not any(p.flags & ECE for p in down if p.src == c.server and not p.flags & SYN
                   and p.ts_ns < first_ce.ts_ns), "no ECE before the first CE"


@pytest.mark.parametrize("name,i", with_fact("urgent"))
def test_urgent(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    u = c.facts["urgent"]
    for iface in ("a0", "b0"):
        pk = of(at(t, iface), c, "c2s")
        isn = next(p.seq for p in pk if is_syn(p))
        urg = [p for p in pk if p.flags & URG]
        assert len(urg) == u["segments"]
        assert [p.urg for p in urg] == u["urgent_pointers"]
        assert [(p.seq - isn) % MOD for p in urg] == u["rel_seqs"]


@pytest.mark.parametrize("name,i", with_fact("data_segs_out"))
def test_segments_larger_than_the_mss(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    data = [p for p in of(at(t, "a0"), c, "c2s") if p.length]
    assert max(p.length for p in data) > c.facts["mss"]
    assert len(data) < c.facts["data_segs_out"] <= -(-c.bytes_c2s // c.facts["mss"]) + 2
    assert sum(p.length for p in repeats(data)) == c.facts["retrans_bytes_c2s"]
    assert c.facts["offloads"]["tcp-segmentation-offload"] == "on"


@pytest.mark.parametrize("name,i", with_fact("rst_without_ack"))
def test_reset_without_ack(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    rx = of(at(t, "b0"), c)
    rst, data = rx[-1], rx[-2]
    assert rst.src == c.client and rst.flags == RST and rst.seq == data.ack and data.length
    assert data.ts_ns >= c.facts["rst_without_ack"]["after_client_gone_ns"]
    gone = next(s.first_ns for s in c.states["client"] if s.state == "CLOSED")
    assert gone < data.ts_ns, "the client's kernel had forgotten the connection"
    assert c.facts["client_resets_sent"] == 1


@pytest.mark.parametrize("name,i", with_fact("unread_at_close"))
def test_reset_on_close_with_unread_data(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    flags = [p.flags for p in of(at(t, "a0"), c, "s2c")]
    assert flags[-1] == RST | ACK and not any(f & FIN for f in flags)
    assert c.facts["unread_at_close"]["server"] == 10 and c.facts["abort_on_close"] == 1


@pytest.mark.parametrize("name,i", with_fact("rejected"))
def test_rejected(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    assert [p.flags for p in of(at(t, "b0"), c)] == [SYN, RST | ACK]
    assert c.path("server") == ["CLOSED"]


@pytest.mark.parametrize("name,i", with_fact("think_ms"))
def test_think_time(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    up, down = of(at(t, "a0"), c), of(at(t, "b0"), c)
    syn = next(p for p in up if is_syn(p))
    synack = next(p for p in up if is_synack(p))
    assert abs((synack.ts_ns - syn.ts_ns) / 1e6 - c.facts["network_rtt_ms"]) < 10
    requests = [p for p in down if p.src == c.client and p.length]
    replies = [p for p in down if p.src == c.server and p.length]
    for req, rep, think in zip(requests, replies, c.facts["think_ms"]["server"]):
        assert abs((rep.ts_ns - req.ts_ns) / 1e6 - think) < 10


@pytest.mark.parametrize("name,i", with_fact("first_sender_after_capture"))
def test_roles_mid_connection(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    assert c.server_port == 80 and c.client_port >= 32768, "ephemeral client, well-known server"
    for cap in t.captures.values():
        pk = packets(cap.path)
        assert not any(p.flags & SYN for p in pk)
        first = next(p for p in pk if p.length)
        assert (first.src == c.server) == (c.facts["first_sender_after_capture"] == "server")
        fin = next(p for p in pk if p.flags & FIN)
        assert (fin.src == c.server) == (c.facts["closed_first"] == "server")
    assert t.captures["sender"].iface == "b0", "the server sends the data"


@pytest.mark.parametrize("name,i", with_fact("tfo"))
def test_tfo_cookies(name: str, i: int) -> None:
    t = load(name)
    c = t.conns[i]
    f = c.facts["tfo"]
    pk = of(at(t, "a0"), c)
    syn = next(p for p in pk if is_syn(p))
    synack = next(p for p in pk if is_synack(p))
    cookie = bytes.fromhex(f["cookie"])
    assert syn.length == f["data_in_syn"]
    if f.get("cookie_issued_by") == "server":
        assert syn.option(34) == b"" and synack.option(34) == cookie
    else:
        assert syn.option(34) == cookie and synack.option(34) is None
        assert (synack.ack - syn.seq) % MOD == 1 + f["data_in_syn"], "the SYN's data acknowledged"
