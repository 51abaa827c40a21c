"""A connection's story as one JSON-ready object: the facts `explain --format json` prints.

The same facts the text renders (docs/explain.md lists their ids), without the words: the
connection's states as the whole capture shows them (each side's initial and final state and
its path, a path of the RFC 9293 diagram), every transition with ``revised`` marking what later
evidence took back, the state anomalies, and the story's facts (message id, parameters, frame,
side) for the introduction, each packet and the summary.
"""
from __future__ import annotations

import json
from typing import Any

from .model import ConnectionStory

__all__ = ["story_object", "story_line"]

_SIDES = ("client", "server")


def story_object(story: ConnectionStory) -> dict[str, Any]:
    """The story as plain values (for JSON)."""
    life = story.lifecycle
    out: dict[str, Any] = {"stream": story.stream, "client": story.client,
                           "server": story.server}
    if life is not None:
        finals = (life.client_final, life.server_final)
        states = {}
        for i, side in enumerate(_SIDES):
            path = [life.initial[i].name] + [t.new.name for t in life.transitions
                                             if t.side == side and not t.revised]
            states[side] = {"initial": life.initial[i].name, "final": finals[i].name,
                            "path": path}
        out.update({
            "handshake": life.handshake, "handshake_complete": life.handshake_complete,
            "teardown": life.teardown, "role_guessed": life.role_guessed,
            "syn_cookie": life.syn_cookie, "states": states,
            "transitions": [
                {"frame": t.frame, "side": t.side, "from": t.old.name, "to": t.new.name,
                 "reason": t.reason, "confidence": t.confidence, "event": t.event or None,
                 "revised": t.revised} for t in life.transitions],
            "anomalies": [
                {"frame": a.frame, "side": a.side, "state": a.state.name, "event": a.event,
                 "anomaly": a.anomaly} for a in life.state_anomalies],
        })
    facts: list[dict[str, Any]] = [_fact(f, None, None) for f in story.intro]
    for step in story.steps:
        facts += [_fact(f, step.frame, step.sender) for f in step.facts]
    facts += [_fact(f, None, None) for f in story.summary]
    out["facts"] = facts
    return out


def story_line(story: ConnectionStory) -> str:
    """The story as one line of JSON (JSON Lines)."""
    return json.dumps(story_object(story), ensure_ascii=False) + "\n"


def _fact(f: Any, frame: int | None, side: str | None) -> dict[str, Any]:
    return {"id": f.id, "frame": frame, "side": side, "params": _plain(f.params)}


def _plain(v: Any) -> Any:
    """Parameters as JSON values (tuples as lists, enums by name, bytes as text)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if hasattr(v, "name") and hasattr(v, "value"):
        return v.name
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)
