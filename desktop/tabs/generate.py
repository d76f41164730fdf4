"""Generate tab: the reply streams in piece by piece; Send turns into Stop;
sampling options, seed, regenerate, and optional colouring of pieces by probability."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QPushButton, QSpinBox

from nlpcore.services import SAMPLERS, GenerateOptions

from ..i18n import tr
from ..records import generation_payload
from ..widgets.bound import bind
from ..widgets.bubble import MessageBubble
from ..widgets.colouring import plain_html, probability_html
from .base import ChatTab, PendingReply

MODELS = ("generate-en", "generate-ko")
SEED_RANDOM = -1


class GenerateTab(ChatTab):
    task = "generate"
    title_key = "tab.generate"
    streaming = True

    def build_options(self, form: QFormLayout) -> None:
        self.model_box = QComboBox()
        for name in MODELS:
            self.model_box.addItem(name, name)
        bind(self.model_box, self.settings, "generate/model")
        self.add_row("generate.model", self.model_box)
        self.sampler_box = QComboBox()
        for name in SAMPLERS:
            self.sampler_box.addItem(name, name)
        bind(self.sampler_box, self.settings, "generate/sampler")
        self.add_row("generate.sampler", self.sampler_box)
        self.temperature_box = QDoubleSpinBox()
        self.temperature_box.setRange(0.05, 3.0)
        self.temperature_box.setSingleStep(0.05)
        bind(self.temperature_box, self.settings, "generate/temperature")
        self.add_row("generate.temperature", self.temperature_box)
        self.top_k_box = QSpinBox()
        self.top_k_box.setRange(0, 1000)
        bind(self.top_k_box, self.settings, "generate/top_k")
        self.add_row("generate.top_k", self.top_k_box)
        self.top_p_box = QDoubleSpinBox()
        self.top_p_box.setRange(0.01, 1.0)
        self.top_p_box.setSingleStep(0.05)
        bind(self.top_p_box, self.settings, "generate/top_p")
        self.add_row("generate.top_p", self.top_p_box)
        self.penalty_box = QDoubleSpinBox()
        self.penalty_box.setRange(0.5, 3.0)
        self.penalty_box.setSingleStep(0.05)
        bind(self.penalty_box, self.settings, "generate/repetition_penalty")
        self.add_row("generate.penalty", self.penalty_box)
        self.max_tokens_box = QSpinBox()
        self.max_tokens_box.setRange(1, 4000)
        self.max_tokens_box.setSingleStep(50)
        bind(self.max_tokens_box, self.settings, "generate/max_new_tokens")
        self.add_row("generate.max_tokens", self.max_tokens_box)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(SEED_RANDOM, 2_147_483_647)
        bind(self.seed_box, self.settings, "generate/seed")
        self.add_row("generate.seed", self.seed_box)
        self.colour_box = QCheckBox()
        bind(self.colour_box, self.settings, "generate/colour_tokens")
        self.colour_box.toggled.connect(lambda _on: self.recolour())
        form.addRow(self.colour_box)
        self.regenerate_button = QPushButton()
        self.regenerate_button.setObjectName("regenerate-button")
        self.regenerate_button.clicked.connect(self.regenerate)
        self.extra_buttons.addWidget(self.regenerate_button)

    def retranslate_options(self) -> None:
        self.seed_box.setSpecialValueText(tr("generate.seed_random"))
        self.colour_box.setText(tr("generate.colour"))
        self.regenerate_button.setText("↻ " + tr("generate.regenerate"))
        self.regenerate_button.setToolTip(tr("generate.regenerate_tip"))
        for i, name in enumerate(SAMPLERS):
            self.sampler_box.setItemText(i, tr("sampler." + name))

    def apply_service_info(self, info: dict[str, Any]) -> None:
        """List the models the service loaded (the preferred one stays selected when present)."""
        installed = list(info.get("models") or MODELS)
        preferred = self.settings.value("generate/model")
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for name in installed:
            self.model_box.addItem(name, name)
        self.model_box.setCurrentIndex(max(self.model_box.findData(preferred), 0))
        self.model_box.blockSignals(False)  # the stored preference stays for when that model is installed

    def _update_controls(self) -> None:
        super()._update_controls()
        if hasattr(self, "regenerate_button"):
            self.regenerate_button.setEnabled(self.is_ready() and self.active_pending() is None
                                              and self._last_prompt() is not None)

    # -------------------------------------------------------------- requests
    def options(self) -> GenerateOptions:
        seed = self.seed_box.value()
        return GenerateOptions(
            max_new_tokens=self.max_tokens_box.value(), sampler=self.sampler_box.currentData(),
            temperature=self.temperature_box.value(), top_k=self.top_k_box.value(), top_p=self.top_p_box.value(),
            repetition_penalty=self.penalty_box.value(), seed=None if seed == SEED_RANDOM else seed,
        )

    def request(self, text: str):
        model = self.model_box.currentData()
        options = self.options()
        job = lambda service, cancel: service.stream(text, model, options, cancel)  # noqa: E731
        return job, {"model": model, "options": options}

    def reply_payload(self, pending: PendingReply, result: Any) -> dict[str, Any]:
        return generation_payload(pending.items, pending.request["model"], pending.request["options"],
                                  pending.worker.seconds, stopped=pending.worker.cancel.is_set())

    def render_stream(self, pending: PendingReply, bubble: MessageBubble) -> None:
        text = "".join(piece.text for piece in pending.items)
        bubble.set_text(text + " ▍")
        bubble.copy_text = text
        bubble.set_meta(tr("generate.streaming", tokens=sum(len(p.token_ids) for p in pending.items)))

    def render_reply(self, bubble: MessageBubble, payload: dict[str, Any]) -> None:
        meta = tr("generate.meta", model=payload.get("model", ""), tokens=payload.get("tokens", 0),
                  rate=payload.get("tokens_per_s", 0.0), seconds=payload.get("seconds", 0.0))
        bubble.set_meta(meta + (" · " + tr("generate.stopped") if payload.get("stopped") else ""))
        text = payload.get("text", "")
        if self.colour_box.isChecked():
            bubble.set_html(probability_html(payload.get("pieces", [])), text)
        else:
            bubble.set_html(plain_html(text), text)

    def status_line(self, payload: dict[str, Any]) -> str:
        return tr("status.generation", seconds=payload.get("seconds", 0.0), rate=payload.get("tokens_per_s", 0.0))

    def recolour(self) -> None:
        for bubble in self.chat.bubbles():
            if bubble.payload.get("kind") == "generation":
                self.render_reply(bubble, bubble.payload)

    # -------------------------------------------------------------- regenerate
    def _last_prompt(self):
        if self.conversation is None:
            return None
        messages = self.store.messages(self.conversation.id)
        users = [m for m in messages if m.role == "user"]
        return users[-1] if users else None

    def regenerate(self):
        """Answer the last prompt again, replacing the reply that followed it."""
        if not self.is_ready() or self.active_pending() is not None:
            return None
        prompt = self._last_prompt()
        if prompt is None:
            return None
        for message in self.store.messages(self.conversation.id):
            if message.id > prompt.id:
                self.store.delete_message(message.id)
        for bubble in self.chat.bubbles():
            if bubble.message_id is not None and bubble.message_id > prompt.id:
                self.chat.remove_bubble(bubble)
        job, request = self.request(prompt.text)
        return self._submit(prompt.text, job, request)
