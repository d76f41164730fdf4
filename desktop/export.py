"""A conversation as Markdown or JSON (Qt-free)."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Sequence

from .records import reply_text
from .store import Conversation, Message

EXPORT_FORMAT = 1


def _when(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp).astimezone().replace(microsecond=0).isoformat()


def to_json(conversation: Conversation, messages: Sequence[Message]) -> str:
    body: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "app": "Malbeot",
        "tab": conversation.tab,
        "title": conversation.title,
        "created": _when(conversation.created),
        "messages": [
            {"role": m.role, "text": m.text, "created": _when(m.created), **({"payload": m.payload} if m.payload else {})}
            for m in messages
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def _reply_markdown(message: Message) -> list[str]:
    p = message.payload
    kind = p.get("kind")
    if message.role == "error":
        return [f"> ⚠ {message.text}"]
    if kind == "sentiment":
        lines = [f"**{p['label']}** — P(positive) = {p['score']:.3f} · language {p['language']} · model `{p['model']}`"]
        if p.get("contributions"):
            words = ", ".join(f"{w} ({s:+.3f})" for w, _, _, s in p["contributions"])
            lines.append(f"Word contributions: {words}")
        return lines
    if kind == "translation":
        lines = [p.get("text", message.text), ""]
        alternatives = p.get("hypotheses", [])[1:]
        if alternatives:
            lines.append("Alternatives:")
            lines += [f"{i}. {h['text']} (score {h['score']:.3f})" for i, h in enumerate(alternatives, 2)]
        lines.append(f"*{p.get('src')} → {p.get('tgt')} · `{p.get('model')}`*")
        return lines
    if kind == "generation":
        stats = f"*{p.get('tokens', 0)} tokens · {p.get('tokens_per_s', 0):.1f} tokens/s · `{p.get('model')}`"
        return [message.text, "", stats + (" · stopped*" if p.get("stopped") else "*")]
    return [reply_text(p) or message.text]


def to_markdown(conversation: Conversation, messages: Sequence[Message]) -> str:
    lines = [f"# {conversation.title}", "", f"*Malbeot · {conversation.tab} · {_when(conversation.created)}*", ""]
    for m in messages:
        who = "You" if m.role == "user" else "Malbeot"
        lines.append(f"### {who}")
        lines.append("")
        lines += [m.text] if m.role == "user" else _reply_markdown(m)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
