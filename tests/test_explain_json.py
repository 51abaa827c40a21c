"""`tcpscope explain --format json`: one object per connection, the story's facts without words.

On every hindsight capture (fixtures/hindsight/): each side's path is a path of the RFC 9293
diagram (every step a table edge) from its initial state to its final one, the transitions
not revised make that path, every fact id is a message of the catalogues (docs/explain.md),
and the output is valid JSON Lines.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from hindsight_truth import load, names
from tcpscope.analysis.states import TRANSITIONS, State
from tcpscope.present.explain import write_explain
from tcpscope.present.i18n import catalogue

EDGES = {(a, b) for (a, _), b in TRANSITIONS.items()}
CAPTURES = [(n, side) for n in names() for side in load(n).captures]


def explain_json(path) -> list[dict]:
    out = io.StringIO()
    write_explain(str(path), out, fmt="json")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_command() -> None:
    path = load("hs_rejected").captures["sender"].path
    res = subprocess.run([sys.executable, "-m", "tcpscope", "explain", str(path), "--format",
                          "json"], capture_output=True, text=True, check=True)
    (conn,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert conn["states"]["server"] == {"initial": "CLOSED", "final": "CLOSED",
                                        "path": ["CLOSED"]}
    assert conn["handshake"] == "rejected"


@pytest.mark.parametrize("name,side", CAPTURES, ids=[f"{n}-{s}" for n, s in CAPTURES])
def test_paths_facts_and_ids(name: str, side: str) -> None:
    en, zh = catalogue("en"), catalogue("zh")
    for conn in explain_json(load(name).captures[side].path):
        for who in ("client", "server"):
            st = conn["states"][who]
            path = st["path"]
            assert path[0] == st["initial"] and path[-1] == st["final"]
            for a, b in zip(path, path[1:]):
                assert (State[a], State[b]) in EDGES, (conn["stream"], who, path)
            kept = [t for t in conn["transitions"] if t["side"] == who and not t["revised"]]
            assert [t["to"] for t in kept] == path[1:]
            assert all(not t["reason"].startswith("revise.") for t in kept)
        for f in conn["facts"]:
            assert en.has(f["id"]) and zh.has(f["id"]), f["id"]


def test_half_open_and_cookies_are_facts() -> None:
    conns = explain_json(load("hs_syn_cookies").captures["receiver"].path)
    spoofed = conns[:12]
    assert all(c["handshake"] == "half_open" and not c["handshake_complete"] for c in spoofed)
    assert all(c["states"]["client"]["final"] == "SYN_SENT" for c in spoofed)
    assert [c["syn_cookie"] for c in spoofed] == [False] * 5 + [True] * 7
    assert [c["states"]["server"]["final"] for c in spoofed] == ["SYN_RECEIVED"] * 5 + \
        ["LISTEN"] * 7
    assert all("sum.handshake.half_open" in {f["id"] for f in c["facts"]} for c in spoofed)


def test_revisions_are_facts() -> None:
    (conn,) = explain_json(load("hs_ack_lost").captures["sender"].path)
    server = [t for t in conn["transitions"] if t["side"] == "server"]
    assert [(t["from"], t["to"], t["revised"]) for t in server] == [
        ("LISTEN", "SYN_RECEIVED", False), ("SYN_RECEIVED", "ESTABLISHED", True),
        ("ESTABLISHED", "SYN_RECEIVED", True), ("SYN_RECEIVED", "ESTABLISHED", False),
        ("ESTABLISHED", "CLOSE_WAIT", False), ("CLOSE_WAIT", "LAST_ACK", False),
        ("LAST_ACK", "CLOSED", False)]
    revised = [f for f in conn["facts"] if f["id"] == "state.revised"]
    assert [(f["frame"], f["params"]["side"], f["params"]["state"], f["params"]["since"])
            for f in revised] == [(4, "server", "SYN_RECEIVED", 3)]


@pytest.mark.parametrize("name,side", [("hs_tw_reuse_server", "server"),
                                       ("hs_tw_reuse_client", "client")])
def test_time_wait_reuse(name: str, side: str) -> None:
    """A new SYN on a 4-tuple still in TIME_WAIT (RFC 6191): the side that held it starts the
    new connection in TIME_WAIT, and the story says so."""
    for cap in ("sender", "receiver"):
        old, new = explain_json(load(name).captures[cap].path)
        assert old["states"][side]["final"] == "TIME_WAIT"
        path = new["states"][side]["path"]
        assert path[:2] == ["TIME_WAIT", "SYN_RECEIVED" if side == "server" else "SYN_SENT"]
        reuse = [t for t in new["transitions"] if t["reason"] == "open.time_wait_reuse"]
        assert [t["side"] for t in reuse] == [side]
        (intro,) = [f for f in new["facts"] if f["id"] == "conn.initial_time_wait"]
        assert intro["params"]["side"] == side and intro["params"]["stream"] == old["stream"]


def test_tfo_cookie_issued_by_the_server() -> None:
    conns = explain_json(load("hs_tfo").captures["sender"].path)
    ids = [(f["id"], f["side"]) for f in conns[0]["facts"] if f["id"].startswith("opt.tfo")]
    assert ids == [("opt.tfo_request", "client"), ("opt.tfo_issued", "server")]
