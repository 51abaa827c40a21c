"""States and lifecycles on real captures: golden sequences, invariants, robustness.

- every fixture's per-packet states, events and transitions are golden files in
  tests/golden/states/ (refresh with ``TCPSCOPE_UPDATE_GOLDEN=1 pytest
  tests/test_states_fixtures.py`` after reading the difference);
- each fixture's lifecycle kinds are also spelled out below, checked by hand against
  fixtures/README.md (the kernel-truth test, test_kernel_states.py, holds the life_*
  fixtures to `ss`);
- the tracker gives the same answers whatever the batch size (that it gives the reference
  tracker's on every capture is tests/test_lifecycle_fast.py);
- every transition on every capture follows a table edge, or is a recorded correction.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tcpscope.analysis.states import EXTRA_REASONS, TRANSITIONS, Event, State
from tests.conftest import CORPUS, ROOT, corpus_files, fixture_files
from tests.states_helpers import Run, run_file

GOLDEN = Path(__file__).parent / "golden" / "states"
UPDATE = os.environ.get("TCPSCOPE_UPDATE_GOLDEN") == "1"
DEMO = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"
CAPTURES = {p.name: p for p in fixture_files() if p.suffix in (".pcap", ".pcapng")}
CAPTURES["demo.pcap"] = DEMO

OPEN = ("3way", "4way", "client", "TIME_WAIT", "CLOSED")
#: (handshake, teardown, time_wait_side, client final, server final) per stream.
KINDS: dict[str, list[tuple]] = {
    "demo.pcap": [OPEN],
    "lo_ipv4.pcap": [OPEN], "lo_ipv6.pcap": [OPEN], "lo_ipv4_nano.pcap": [OPEN],
    "close_3way.pcap": [("3way", "3way", "client", "TIME_WAIT", "CLOSED")],
    "half_close.pcap": [("3way", "half_close", "client", "TIME_WAIT", "CLOSED")],
    "refused.pcap": [("rejected", "rst_server", None, "CLOSED", "CLOSED")] * 2,
    "rst_abort.pcap": [("3way", "rst_client", None, "CLOSED", "CLOSED"),
                       ("3way", "rst_server", None, "CLOSED", "CLOSED")],
    "tfo.pcap": [OPEN, OPEN],
    "handshake_retries.pcap": [("3way+retries",) + OPEN[1:], ("3way+retries",) + OPEN[1:],
                               ("unanswered", "none", None, "SYN_SENT", "LISTEN")],
    "zero_window.pcap": [OPEN], "lossy_transfer.pcap": [OPEN], "reorder.pcap": [OPEN],
    "ethernet_veth.pcap": [OPEN] * 2, "vlan_8021q.pcap": [OPEN] * 2, "qinq_8021ad.pcap": [OPEN] * 2,
    "any_sll.pcap": [OPEN] * 3, "any_sll2.pcap": [OPEN] * 3, "multi_iface.pcapng": [OPEN] * 3,
    "truth_loss_sender.pcap": [("3way+retries",) + OPEN[1:]],
    "truth_loss_receiver.pcap": [("3way+retries",) + OPEN[1:]],
    "truth_reorder_sender.pcap": [OPEN], "truth_reorder_receiver.pcap": [OPEN],
    "truth_dup_sender.pcap": [OPEN], "truth_dup_receiver.pcap": [OPEN],
    "life_4way.pcap": [OPEN],
    "life_server_first.pcap": [("3way", "4way", "server", "CLOSED", "TIME_WAIT")],
    "life_3way_close.pcap": [("3way", "3way", "client", "TIME_WAIT", "CLOSED")],
    "life_syn_retry.pcap": [("3way+retries",) + OPEN[1:]],
    "life_synack_retry.pcap": [("3way+retries",) + OPEN[1:]],
    "life_rejected.pcap": [("rejected", "rst_server", None, "CLOSED", "CLOSED")],
    "life_unanswered.pcap": [("unanswered", "none", None, "SYN_SENT", "LISTEN")],
    "life_simopen.pcap": [("simultaneous",) + OPEN[1:]],
    "life_tfo.pcap": [OPEN],
    "life_half_close.pcap": [("3way", "half_close", "client", "TIME_WAIT", "CLOSED")],
    "life_simclose.pcap": [("3way", "simultaneous", "both", "TIME_WAIT", "TIME_WAIT")],
    "life_rst_client.pcap": [("3way", "rst_client", None, "CLOSED", "CLOSED")],
    "life_rst_server.pcap": [("3way", "rst_server", None, "CLOSED", "CLOSED")],
    "life_midstream.pcap": [("midstream",) + OPEN[1:]],
    # the server's ACK of the client's FIN is the frame this capture misses: the server's
    # IPv4 IDs skip it, so the close is the kernel's 4-packet one (test_kernel_states.py)
    "life_missing.pcap": [OPEN],
}


def render(r: Run) -> str:
    """The golden text: a line per frame, then each connection's lifecycle."""
    lines = ["# frame stream client server events"]
    for i, ((c, s), st) in enumerate(zip(r.states, r.streams)):
        if st >= 0:
            ev = ",".join(r.events.get(i + 1, ()))
            lines.append(f"{i + 1} {st} {c} {s} {ev}".rstrip())
    for st, life in r.lifecycles.items():
        d = life.as_dict()
        lines.append(
            f"# stream {st}: handshake {d['handshake']} (complete {d['handshake_complete']}), "
            f"syn retries {d['syn_retries']} {d['syn_backoff']}, synack retries "
            f"{d['synack_retries']} {d['synack_backoff']}, teardown {d['teardown']}, time_wait "
            f"{d['time_wait_side']}, final {d['client_final']}/{d['server_final']}, packets "
            f"{d['packets']}, bytes {d['bytes']}")
        for t in life.transitions:
            lines.append(f"#   {t.frame} {t.side} {t.old.name} -> {t.new.name} {t.reason} "
                         f"{t.confidence} {t.event}{' (revised)' if t.revised else ''}".rstrip())
        for a in life.state_anomalies:
            lines.append(f"#   anomaly {a.frame} {a.side} {a.state.name} {a.event} {a.anomaly}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    return {name: run_file(path) for name, path in CAPTURES.items()}


def test_every_fixture_has_its_kinds():
    assert set(KINDS) == set(CAPTURES)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_lifecycle_kinds(name, runs):
    got = [(life.handshake, life.teardown, life.time_wait_side, life.client_final.name,
            life.server_final.name) for life in runs[name].lifecycles.values()]
    assert got == KINDS[name]
    assert not any(life.state_anomalies for life in runs[name].lifecycles.values())


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_golden(name, runs):
    text = render(runs[name])
    path = GOLDEN / (name.rsplit(".", 1)[0] + ".txt")
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name}: states differ from {path} (see the module doc)"


def test_demo_story(runs):
    r = runs["demo.pcap"]
    assert r.states[0] == ("SYN_SENT", "SYN_RECEIVED") and r.states[2] == ("ESTABLISHED",) * 2
    assert r.states[-4:] == [("FIN_WAIT_1", "CLOSE_WAIT"), ("FIN_WAIT_2", "CLOSE_WAIT"),
                             ("TIME_WAIT", "LAST_ACK"), ("TIME_WAIT", "CLOSED")]
    life = r.life
    assert (life.client_final, life.server_final) == (State.TIME_WAIT, State.CLOSED)
    assert life.packets == (10, 8) and life.bytes == (12, 32)
    assert life.handshake_rtt == pytest.approx(36e-6)


def test_handshake_retries_backoff(runs):
    """Linux 6.x: SYNs 1 s apart (tcp_syn_linear_timeouts), SYN-ACKs doubling (1 s, 2 s)."""
    lives = runs["handshake_retries.pcap"].lifecycles
    assert (lives[0].syn_retries, lives[0].syn_backoff) == (2, "constant")
    assert lives[0].syn_intervals == pytest.approx([1.0, 1.02], abs=0.01)
    assert (lives[1].synack_retries, lives[1].synack_backoff) == (2, "doubling")
    assert lives[1].synack_intervals == pytest.approx([1.02, 2.02], abs=0.01)
    assert (lives[2].syn_retries, lives[2].syn_backoff) == (2, "constant")


def test_compressed_copies_agree(runs):
    want = runs["lo_ipv4.pcap"].states
    for ext in ("gz", "xz", "zst"):
        assert run_file(ROOT / "fixtures" / f"lo_ipv4.pcap.{ext}").states == want


@pytest.mark.parametrize("name", ["demo.pcap", "handshake_retries.pcap", "half_close.pcap",
                                  "life_simclose.pcap", "life_simopen.pcap", "lossy_transfer.pcap",
                                  "multi_iface.pcapng", "rst_abort.pcap"])
@pytest.mark.parametrize("batch", [1, 3, 17])
def test_batch_size_does_not_matter(name, batch, runs):
    r = run_file(CAPTURES[name], batch_frames=batch)
    assert (r.states, r.events) == (runs[name].states, runs[name].events)
    assert {k: v.as_dict() for k, v in r.lifecycles.items()} == \
        {k: v.as_dict() for k, v in runs[name].lifecycles.items()}


def check_against_engine(r: Run) -> None:
    """Counts, times and SYN options agree with the engine's connection rows."""
    for d in r.connections:
        life = r.lifecycles[d["stream"]]
        if d["role_guessed"] or life.role_guessed:
            continue
        c, s = d["client_side"], d["server_side"]
        assert life.packets == (c["packets"], s["packets"])
        assert life.bytes == (c["bytes"], s["bytes"])
        assert (life.first_ts, life.last_ts) == pytest.approx((d["first_ts"], d["last_ts"]),
                                                              abs=1e-6)
        for opts, side in ((life.client_options, c), (life.server_options, s)):
            assert (opts.mss, opts.wscale, opts.sack_permitted, opts.timestamps) == (
                side["mss"], side["wscale"], side["sack_permitted"], side["timestamps"])
        assert life.anomalies == {k: v for k, v in d["flag_counts"].items() if v}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_lifecycles_agree_with_the_engine(name, runs):
    check_against_engine(runs[name])


def check_invariants(r: Run) -> None:
    """Each side's path (the transitions later evidence did not take back) starts at its
    initial state, chains, and is a path of the RFC 9293 diagram: every step a table edge;
    what was taken back is marked, a revision of what a live view showed."""
    for life in r.lifecycles.values():
        for i, side in enumerate(("client", "server")):
            prev = life.initial[i]
            for t in (t for t in life.transitions if t.side == side):
                assert t.confidence in ("observed", "assumed", "inferred")
                if t.revised:
                    continue
                assert not t.reason.startswith("revise."), (life.stream, t)
                assert t.old == prev, (life.stream, t)
                prev = t.new
                ev = Event[t.event.upper()]
                assert TRANSITIONS[(t.old, ev)] == t.new, (life.stream, t)
                assert t.reason in EXTRA_REASONS or t.reason.split(".")[0] in (
                    "open", "close", "reset", "infer"), t
            final = life.client_final if side == "client" else life.server_final
            assert final == prev, (life.stream, side)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_transitions_follow_the_table(name, runs):
    check_invariants(runs[name])


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not found")
def test_the_shared_corpus():
    """127 third-party captures: no exception, valid states, table edges only, counts as
    the engine's."""
    from tcpscope.capture.errors import CaptureError

    n = 0
    for p in corpus_files():
        try:
            r = run_file(p)
        except CaptureError:
            continue
        n += 1
        assert all(c in State.__members__ and s in State.__members__ for c, s in r.states)
        check_invariants(r)
        check_against_engine(r)
        for life in r.lifecycles.values():
            life.as_dict()
    assert n > 100
