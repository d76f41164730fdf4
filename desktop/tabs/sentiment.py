"""Sentiment tab: label, probability bar, language, and the input's words coloured by contribution."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel

from ..i18n import tr
from ..records import sentiment_payload
from ..widgets.bound import bind
from ..widgets.bubble import MessageBubble
from ..widgets.colouring import contribution_html
from ..widgets.probability_bar import ProbabilityBar
from .base import ChatTab, PendingReply

MODELS = ("auto", "sentiment-ko", "sentiment-en")


class SentimentTab(ChatTab):
    task = "sentiment"
    title_key = "tab.sentiment"

    def build_options(self, form: QFormLayout) -> None:
        self.model_box = QComboBox()
        for name in MODELS:
            self.model_box.addItem(name, name)
        bind(self.model_box, self.settings, "sentiment/model")
        self.add_row("sentiment.model", self.model_box)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setObjectName("tab-notice")
        form.addRow(self.legend)

    def retranslate_options(self) -> None:
        for i, name in enumerate(MODELS):
            self.model_box.setItemText(i, tr(f"sentiment.model.{name}"))
        self.legend.setText(tr("sentiment.legend"))

    def apply_service_info(self, info: dict[str, Any]) -> None:
        installed = set(info.get("models", MODELS[1:]))
        model = self.model_box.model()
        for i, name in enumerate(MODELS):
            model.item(i).setEnabled(name == "auto" or name in installed)

    def request(self, text: str):
        model = self.model_box.currentData() or "auto"
        return (lambda service, cancel: service.predict([text], model=model)[0]), {"model": model}

    def reply_payload(self, pending: PendingReply, result: Any) -> dict[str, Any]:
        return sentiment_payload(result, pending.worker.seconds)

    def render_reply(self, bubble: MessageBubble, payload: dict[str, Any]) -> None:
        label = payload["label"]
        icon = "😊" if label == "positive" else "😞"
        headline = QLabel(f"{icon} {tr('label.' + label)}  ·  {payload['score']:.1%}")
        headline.setObjectName("sentiment-label")
        bubble.set_text("")
        bubble.add_extra(headline)
        bubble.add_extra(ProbabilityBar(payload["score"], tr("label.positive"), tr("label.negative")))
        words = QLabel(contribution_html(payload.get("text", ""), payload.get("contributions", [])))
        words.setTextFormat(Qt.TextFormat.RichText)
        words.setWordWrap(True)
        words.setObjectName("sentiment-words")
        ranked = sorted(payload.get("contributions", []), key=lambda c: -abs(c[3]))[:8]
        words.setToolTip("\n".join(f"{c[0]}  {c[3]:+.3f}" for c in ranked if c[3]) or tr("sentiment.legend"))
        bubble.add_extra(words)
        bubble.copy_text = f"{tr('label.' + label)} ({payload['score']:.3f})"
        bubble.set_meta(tr("sentiment.meta", language=tr("lang." + payload.get("language", "unknown")),
                           model=payload.get("model", ""), seconds=payload.get("seconds", 0.0)))
