"""Ground truth from the real kernel: captures whose every loss, delay and duplicate is known.

Each `fixtures/truth_<name>.truth.json` is the log of a relay (scripts/fixtures/impair.py)
that sat between sender A and receiver B and dropped, delayed or duplicated chosen
frames of one bulk transfer; `truth_<name>_sender.pcap` was captured on A's side of the
relay, `truth_<name>_receiver.pcap` on B's (fixtures/README.md). For a direction of
the flow, its *upstream* capture saw every frame the sender sent, its *downstream*
capture only what the relay let through.

What must be true, derived from the log and the raw bytes only (no tool's opinion):

- the log agrees with the captures (a dropped frame is upstream only, a duplicate
  twice downstream, a delayed frame overtaken by as many frames as logged);
- the sender repaired every dropped data segment: each is covered by a later
  repeat upstream, and every repeat upstream covers a dropped segment, or a
  delayed one (the sender's RACK took the reordering for a loss: spurious);
- downstream, each run of dropped or delayed first transmissions leaves one
  hole, and the segments that arrive below the highest sequence number are
  exactly the repairs, the delayed originals, the spurious repeats and the
  duplicate copies.

Then tshark (marked `oracle`) and tcpscope's engine are held to it:

- upstream, the frames flagged retransmission / fast / spurious (or, where
  Wireshark's timer rule says so, out-of-order) are exactly the repeats;
- downstream, `lost_segment` is on exactly the first frame after each hole, and
  the retransmission-family or out-of-order flags are exactly on the late arrivals;
  a duplicate copy is a retransmission (Wireshark), a duplicated ACK a duplicate ACK;
- the handshake: every SYN / SYN-ACK after the first in a capture is a retransmission;
- tcpscope's improved mode knows better (a duplicate copy by its IP ID, a delayed
  original is out of order, a sender-side repeat is a retransmission): asserted where
  the improved rule exists, an expected failure (shown in the summary) until then.

The pcap reader (raw_pcap.py) is deliberately independent of tcpscope's and of the maker's.
"""
from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES, require_tool
from raw_pcap import MOD, Pkt, read_pcap

TRUTHS = sorted(FIXTURES.glob("truth_*.truth.json"))
RETX = frozenset({"retransmission", "fast_retransmission", "spurious_retransmission"})
LATE = RETX | {"out_of_order"}


# --------------------------------------------------------------------------- captures


def late_data(pkts: list[Pkt]) -> list[Pkt]:
    """Data segments starting below the highest sequence number seen before them."""
    highest, late = None, []
    for p in pkts:
        if not p.length:
            continue
        if highest is not None and (p.seq - highest) % MOD >= MOD // 2:
            late.append(p)
        end = (p.seq + p.length) % MOD
        if highest is None or (end - highest) % MOD < MOD // 2:
            highest = end
    return late


class Case:
    """One ground-truth experiment: the log, both captures, and what must follow."""

    def __init__(self, truth_path: Path) -> None:
        self.truth = json.loads(truth_path.read_text())
        self.name = self.truth["name"]
        caps = self.truth["captures"]
        self.path = {role: FIXTURES / caps[role]["file"] for role in ("sender", "receiver")}
        self.pkts = {role: read_pcap(p) for role, p in self.path.items()}
        flow = self.truth["flow"]
        self.client = (flow["client"], flow["client_port"])
        self.events = self.truth["events"]
        # for each direction: the role whose capture is before / after the relay
        self.up = {d: next(r for r in caps if caps[r]["before_relay"] == d) for d in ("c2s", "s2c")}
        self.down = {d: next(r for r in caps if caps[r]["after_relay"] == d) for d in ("c2s", "s2c")}

    def __repr__(self) -> str:
        return self.name

    def flow(self, role: str, d: str) -> list[Pkt]:
        """The flow's packets of direction d in a capture."""
        if d == "c2s":
            return [p for p in self.pkts[role] if (p.src, p.sport) == self.client]
        return [p for p in self.pkts[role] if (p.dst, p.dport) == self.client]

    def upstream(self, d: str) -> list[Pkt]:
        return self.flow(self.up[d], d)

    def downstream(self, d: str) -> list[Pkt]:
        return self.flow(self.down[d], d)

    def events_of(self, d: str, action: str | None = None, data: bool | None = None) -> list[dict]:
        return [e for e in self.events if e["dir"] == d
                and (action is None or e["action"] == action)
                and (data is None or (e["len"] > 0) == data)]

    @functools.cached_property
    def repeats(self) -> dict[str, dict]:
        """Per direction: the upstream repeats paired with what the relay did.

        repair[event index] = the first later upstream repeat covering a dropped
        data segment; spurious = repeats covering a delayed segment; plus what is
        left over on either side (must be nothing)."""
        out = {}
        for d in ("c2s", "s2c"):
            up = self.upstream(d)
            at = {p.digest: i for i, p in enumerate(up)}
            late = [(at[p.digest], p) for p in late_data(up)]
            used: set[int] = set()
            repair, unrepaired = {}, []
            for k, ev in enumerate(self.events):
                if ev["dir"] != d or ev["action"] != "drop" or not ev["len"]:
                    continue
                i0 = at[ev["frame_sha256_16"]]
                hit = next((i for i, p in late if i > i0 and i not in used and p.covers(ev["seq"])),
                           None)
                if hit is None:
                    unrepaired.append(ev["rule"])
                else:
                    used.add(hit)
                    repair[k] = up[hit]
            spurious, unexplained = [], []
            delayed = self.events_of(d, "delay", data=True)
            for i, p in late:
                if i in used:
                    continue
                if any(p.covers(e["seq"]) and at[e["frame_sha256_16"]] < i for e in delayed):
                    spurious.append(p)
                else:
                    unexplained.append(p)
            out[d] = {"repair": repair, "spurious": spurious, "unrepaired": unrepaired,
                      "unexplained": unexplained}
        return out

    # -- what each capture must show, as frame numbers ----------------------

    def expected_upstream_retx(self, d: str) -> set[int]:
        """Upstream frames of direction d that repeat data: repairs and spurious repeats."""
        r = self.repeats[d]
        return {p.frame for p in r["repair"].values()} | {p.frame for p in r["spurious"]}

    def expected_downstream_late(self, d: str) -> set[int]:
        """Downstream frames that arrive below the highest seq: the repairs that got
        through, the delayed originals, the spurious repeats, the duplicate copies."""
        down = self.downstream(d)
        by_digest: dict[str, list[Pkt]] = {}
        for p in down:
            by_digest.setdefault(p.digest, []).append(p)
        frames = set()
        dropped = {e["frame_sha256_16"] for e in self.events_of(d, "drop")}
        for p in self.repeats[d]["repair"].values():
            if p.digest not in dropped:  # a repair that was itself dropped is repaired later
                frames.add(by_digest[p.digest][0].frame)
        for p in self.repeats[d]["spurious"]:
            frames.add(by_digest[p.digest][0].frame)
        for e in self.events_of(d, "delay", data=True):
            frames.add(by_digest[e["frame_sha256_16"]][0].frame)
        for e in self.events_of(d, "dup", data=True):
            frames.add(by_digest[e["frame_sha256_16"]][1].frame)
        return frames

    def expected_holes(self, d: str) -> set[int]:
        """Downstream frames right after each run of dropped/delayed first transmissions
        (Wireshark: previous segment not captured)."""
        firsts = sorted((e for e in self.events if e["dir"] == d and e["len"]
                         and e["action"] in ("drop", "delay") and not e.get("retransmission")),
                        key=lambda e: e["rel_seq"])
        ends, run_end = [], None
        for e in firsts:
            if run_end is not None and e["rel_seq"] != run_end:
                ends.append(run_end)
            run_end = e["rel_seq"] + e["len"]
        if run_end is not None:
            ends.append(run_end)
        isn = self.truth["flow"]["isn"][d]
        down = self.downstream(d)
        return {next(p.frame for p in down if p.length and p.seq == (isn + end) % MOD)
                for end in ends}

    def dup_copies(self, d: str, data: bool) -> set[int]:
        down = self.downstream(d)
        return {[p.frame for p in down if p.digest == e["frame_sha256_16"]][1]
                for e in self.events_of(d, "dup", data=data)}

    def handshake_repeats(self, role: str) -> set[int]:
        """Every SYN and every SYN-ACK after the first of its kind in a capture."""
        syns = [p.frame for p in self.pkts[role] if p.is_syn]
        synacks = [p.frame for p in self.pkts[role] if p.is_synack]
        return set(syns[1:]) | set(synacks[1:])

    def data_frames(self, role: str) -> set[int]:
        return {p.frame for p in self.pkts[role] if p.length}


CASES = {p.name.removesuffix(".truth.json"): p for p in TRUTHS}


@functools.cache
def case(name: str) -> Case:
    return Case(CASES[name])


pytestmark = pytest.mark.skipif(not TRUTHS, reason="no fixtures/truth_*.truth.json")
names = pytest.mark.parametrize("name", sorted(CASES))


# --------------------------------------------------------------------------- truth vs captures


@names
def test_log_agrees_with_the_captures(name: str) -> None:
    c = case(name)
    assert not c.truth["unfired_rules"], "every rule of the plan applied"
    for ev in c.events:
        d = ev["dir"]
        up = [p for p in c.upstream(d) if p.digest == ev["frame_sha256_16"]]
        down = [p for p in c.downstream(d) if p.digest == ev["frame_sha256_16"]]
        want = {"drop": 0, "delay": 1, "dup": 2}[ev["action"]]
        assert len(up) == 1 and len(down) == want, (ev["rule"], len(up), len(down))
        p = up[0]
        assert (p.seq, p.length, p.ip_id) == (ev["seq"], ev["len"], ev["ip_id"]), ev["rule"]
        assert p.ts <= ev["time"] + 1e-3, "the relay acted after the sender's capture saw it"
        if ev["action"] == "delay":
            assert not ev.get("released_by_timeout")
            # overtaken downstream by exactly the frames the relay says passed it
            later_up = {q.digest for q in c.upstream(d) if q.frame > p.frame}
            down_all = c.downstream(d)
            i = next(k for k, q in enumerate(down_all) if q.digest == p.digest)
            passed = [q for q in down_all[:i] if q.digest in later_up]
            assert len(passed) == ev["overtaken_by"] == ev["hold_frames"], ev["rule"]
    for d in ("c2s", "s2c"):
        n_up, n_down = len(c.upstream(d)), len(c.downstream(d))
        drops, dups = len(c.events_of(d, "drop")), len(c.events_of(d, "dup"))
        assert n_down == n_up - drops + dups, (d, n_up, n_down, drops, dups)
        counts = c.truth["counts"][d]
        assert counts["frames_in"] == n_up and counts["forwarded"] == n_down, d


@names
def test_sender_repaired_exactly_what_was_dropped(name: str) -> None:
    """Kernel truth, no tool involved: drop -> one later repeat covering it; every
    repeat is a repair or answers a delay (spurious)."""
    c = case(name)
    for d in ("c2s", "s2c"):
        r = c.repeats[d]
        assert r["unrepaired"] == [], f"{d}: dropped, never sent again"
        assert r["unexplained"] == [], f"{d}: sent again for no planned reason"
        assert len(r["repair"]) == len(c.events_of(d, "drop", data=True))
    # the plans' intent, as recorded (the maker re-records until the kernel did this)
    if name == "truth_loss":
        tail = [p for p in c.upstream("c2s")
                if p.length and p.seq == next(e["seq"] for e in c.events if e["rule"] == "tail")]
        assert len(tail) == 3 and tail[2].ts - tail[1].ts >= 0.2, "the lost retransmission: RTO"
        assert sum(p.is_syn for p in c.upstream("c2s")) >= 2, "the lost SYN-ACK: SYN again"
    if name == "truth_reorder":
        assert 0 < len(c.repeats["c2s"]["spurious"]) < len(c.events_of("c2s", "delay"))
    if name == "truth_dup":
        assert not late_data(c.upstream("c2s")), "duplicates happen after the sender"
        ids = [p.ip_id for p in c.upstream("c2s") if p.length]
        assert len(set(ids)) == len(ids), "every transmission has its own IP ID"


@names
def test_downstream_shows_holes_and_late_arrivals(name: str) -> None:
    c = case(name)
    for d in ("c2s", "s2c"):
        late = {p.frame for p in late_data(c.downstream(d))}
        assert late == c.expected_downstream_late(d), d
        c.expected_holes(d)  # every hole is followed by the segment after it


@names
def test_packet_sizes(name: str) -> None:
    """Offloads were off: one segment per frame, never above the MSS."""
    c = case(name)
    mss = c.truth["mss"]["payload_per_segment"]
    for role in ("sender", "receiver"):
        assert len(c.pkts[role]) <= 200
        assert max(p.length for p in c.pkts[role]) == mss


# --------------------------------------------------------------------------- the tools


@functools.cache
def tshark_flags(path: Path) -> tuple[dict[int, set[str]], float | None]:
    """tshark's analysis flags per frame, and the stream's iRTT (one stream per file)."""
    names = sorted(LATE | {"lost_segment", "duplicate_ack"})
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|",
           "-e", "frame.number", "-e", "tcp.analysis.initial_rtt"]
    for n in names:
        cmd += ["-e", f"tcp.analysis.{n}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    flags, irtt = {}, None
    for row in out.splitlines():
        cols = row.split("|")
        flags[int(cols[0])] = {n for n, v in zip(names, cols[2:]) if v}
        if cols[1]:
            irtt = float(cols[1])
    return flags, irtt


@functools.cache
def engine_view(path: Path, mode: str) -> tuple[dict[int, set[str]], dict[int, set[str]], float | None]:
    """tcpscope's flags per frame, the rule identifiers behind them, and the iRTT."""
    try:
        from tcpscope.analysis.annotation import FLAG_BIT, flag_names
        from tcpscope.analysis.rules import RULES_BY_CODE
        from tcpscope.pipeline import analyze
    except ImportError as exc:  # until the engine lands
        pytest.skip(f"tcpscope's analysis engine is not importable yet: {exc}")
    a = analyze(path, mode)
    flags, rules = {}, {}
    for frame, bits, codes in zip(a.frames, a.annotations["flags"], a.annotations["rule"]):
        names = set(flag_names(int(bits)))
        flags[int(frame)] = names
        rules[int(frame)] = {RULES_BY_CODE[int(codes[FLAG_BIT[n]])].id for n in names
                             if int(codes[FLAG_BIT[n]])}
    conns = a.connection_dicts()
    assert len(conns) == 1, "one connection per ground-truth capture"
    return flags, rules, conns[0]["irtt"]


def check_wireshark_view(c: Case, flags_of, irtt_of) -> None:
    """What a tool in Wireshark's terms must say about the captures, given the truth.

    `flags_of(role)` -> {frame: set of flag names}; `irtt_of(role)` -> iRTT seconds.
    """
    for d in ("c2s", "s2c"):
        # upstream: the repeats, and nothing else, are retransmissions
        role = c.up[d]
        flags = flags_of(role)
        data = {p.frame for p in c.upstream(d) if p.length}
        got = {f for f in data if flags[f] & LATE}
        want = c.expected_upstream_retx(d)
        assert got == want, f"{role} capture, {d}: flagged {sorted(got)}, repeats {sorted(want)}"
        # Wireshark may call a repeat out-of-order instead (its timer rule: the
        # segment came within the iRTT of the peer's last packet); nothing else may
        for f in want:
            if not flags[f] & RETX:
                assert "out_of_order" in flags[f]
                p = next(p for p in c.pkts[role] if p.frame == f)
                peer = [q for q in c.flow(role, "s2c" if d == "c2s" else "c2s") if q.frame < f]
                assert peer and p.ts - peer[-1].ts < irtt_of(role), f"frame {f}: OOO not by the timer"
        assert not any(flags[f] & {"lost_segment"} for f in data), f"{role}: nothing lost upstream"
        # downstream: one hole per run of missing first transmissions, and the late
        # arrivals, and nothing else, flagged as retransmission-family or out-of-order
        role = c.down[d]
        flags = flags_of(role)
        data = {p.frame for p in c.downstream(d) if p.length}
        assert {f for f in data if "lost_segment" in flags[f]} == c.expected_holes(d), role
        assert {f for f in data if flags[f] & LATE} == c.expected_downstream_late(d), role
        for f in c.dup_copies(d, data=True):
            assert flags[f] & RETX and "out_of_order" not in flags[f], f"dup copy {f}: {flags[f]}"
        for f in c.dup_copies(d, data=False):
            assert "duplicate_ack" in flags[f], f"duplicated ACK {f}: {flags[f]}"
    for role in ("sender", "receiver"):
        flags = flags_of(role)
        hs = {p.frame for p in c.pkts[role] if p.flags & 0x02}
        assert {f for f in hs if flags[f] & RETX} == c.handshake_repeats(role), role
    dropped_synacks = [e for e in c.events if e["flags"] == "S." and e["action"] == "drop"]
    assert bool(c.handshake_repeats(c.up["s2c"])) == bool(dropped_synacks)


@pytest.mark.oracle
@names
def test_tshark_agrees_with_the_truth(name: str) -> None:
    require_tool("tshark")
    c = case(name)
    check_wireshark_view(c, lambda role: tshark_flags(c.path[role])[0],
                         lambda role: tshark_flags(c.path[role])[1])


@names
def test_tcpscope_wireshark_mode_agrees_with_the_truth(name: str) -> None:
    c = case(name)
    check_wireshark_view(c, lambda role: engine_view(c.path[role], "wireshark")[0],
                         lambda role: engine_view(c.path[role], "wireshark")[2])


#: Improved mode's own out-of-order rules (not Wireshark's timer rules ooo.within_*).
IMPROVED_OOO_RULES = {"ooo.sack_hole_fill", "ooo.ip_id_sent_before"}


def _improved(c: Case, role: str) -> tuple[dict, dict]:
    flags, rules, _ = engine_view(c.path[role], "improved")
    return flags, rules


@names
def test_improved_mode_calls_duplicates_duplicates(name: str) -> None:
    c = case(name)
    copies = c.dup_copies("c2s", data=True)
    if not copies:
        pytest.skip("no duplicated data segments in this fixture")
    flags, rules = _improved(c, c.down["c2s"])
    for f in copies:
        assert "retx.capture_duplicate" in rules[f], f"frame {f}: {rules[f]}"
    assert {f for f, r in rules.items() if "retx.capture_duplicate" in r} == copies


@names
def test_improved_mode_calls_late_originals_out_of_order(name: str) -> None:
    c = case(name)
    role = c.down["c2s"]
    down = c.downstream("c2s")
    originals = {next(p.frame for p in down if p.digest == e["frame_sha256_16"])
                 for e in c.events_of("c2s", "delay", data=True)}
    if not originals:
        pytest.skip("no delayed data segments in this fixture")
    flags, rules = _improved(c, role)
    for f in originals:
        assert "out_of_order" in flags[f] and not flags[f] & RETX, f"frame {f}: {flags[f]}"
        assert IMPROVED_OOO_RULES & set(rules[f]), f"frame {f}: {rules[f]}"


@names
def test_improved_mode_calls_every_sender_repeat_a_retransmission(name: str) -> None:
    c = case(name)
    role = c.up["c2s"]
    want = c.expected_upstream_retx("c2s")
    if not want:
        pytest.skip("the sender repeated nothing in this fixture")
    flags, _ = _improved(c, role)
    for f in want:
        assert flags[f] & RETX and "out_of_order" not in flags[f], f"frame {f}: {flags[f]}"


@names
def test_improved_mode_finds_no_duplicates_that_are_not(name: str) -> None:
    """Only the relay's copies are duplicates. A trap in truth_loss: after the lost
    SYN-ACK the server sent two *byte-identical* SYN-ACKs (same TSval; IP ID 0, as
    every SYN-ACK from a listener) -- two transmissions, not a duplicate."""
    c = case(name)
    for role in ("sender", "receiver"):
        _, rules, _ = engine_view(c.path[role], "improved")
        copies = set()
        for d in ("c2s", "s2c"):
            if c.down[d] == role:
                copies |= c.dup_copies(d, data=True) | c.dup_copies(d, data=False)
        called = {f for f, r in rules.items() if "retx.capture_duplicate" in r}
        assert called <= copies, f"{role}: called duplicates: {sorted(called - copies)}"

