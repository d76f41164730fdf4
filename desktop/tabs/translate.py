"""Translate tab: language pair with swap, beam size and n-best; the reply shows the
best translation, the alternatives with scores, a copy button and, on demand,
the attention heatmap."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QScrollArea, QSpinBox, QToolButton, QWidget

from nlpcore.services import TranslateOptions

from ..i18n import tr
from ..records import translation_payload
from ..widgets.bound import bind
from ..widgets.bubble import MessageBubble
from ..widgets.heatmap import AttentionHeatmap
from .base import ChatTab, PendingReply

DEFAULT_DIRECTIONS = [("en", "fr"), ("fr", "en"), ("ko", "en"), ("en", "ko")]


class TranslateTab(ChatTab):
    task = "translate"
    title_key = "tab.translate"

    def build_options(self, form: QFormLayout) -> None:
        self.directions: list[tuple[str, str]] = list(DEFAULT_DIRECTIONS)
        self.src_box = QComboBox()
        self.tgt_box = QComboBox()
        self.swap_button = QToolButton()
        self.swap_button.setText("⇅")
        self.swap_button.setObjectName("swap-button")
        self.swap_button.clicked.connect(self.swap)
        target = QWidget()
        row = QHBoxLayout(target)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.tgt_box, 1)
        row.addWidget(self.swap_button)
        self.add_row("translate.from", self.src_box)
        self.add_row("translate.to", target)
        self.beam_box = QSpinBox()
        self.beam_box.setRange(1, 16)
        self.nbest_box = QSpinBox()
        self.nbest_box.setRange(1, 16)
        bind(self.beam_box, self.settings, "translate/beam_size")
        bind(self.nbest_box, self.settings, "translate/n_best")
        self.beam_box.valueChanged.connect(lambda v: self.nbest_box.setMaximum(v))
        self.nbest_box.setMaximum(self.beam_box.value())
        self.add_row("translate.beam", self.beam_box)
        self.add_row("translate.nbest", self.nbest_box)
        self._fill_languages(self.settings.value("translate/src"), self.settings.value("translate/tgt"))
        self.src_box.currentIndexChanged.connect(lambda _i: self._source_changed())
        self.tgt_box.currentIndexChanged.connect(lambda _i: self._remember())

    # -------------------------------------------------------------- languages
    def _fill_languages(self, src: str, tgt: str) -> None:
        sources = sorted({s for s, _ in self.directions})
        self.src_box.blockSignals(True)
        self.src_box.clear()
        for code in sources:
            self.src_box.addItem(tr("lang." + code), code)
        index = self.src_box.findData(src)
        self.src_box.setCurrentIndex(max(index, 0))
        self.src_box.blockSignals(False)
        self._fill_targets(tgt)

    def _fill_targets(self, tgt: str) -> None:
        src = self.src_box.currentData()
        targets = sorted(t for s, t in self.directions if s == src)
        self.tgt_box.blockSignals(True)
        self.tgt_box.clear()
        for code in targets:
            self.tgt_box.addItem(tr("lang." + code), code)
        index = self.tgt_box.findData(tgt)
        self.tgt_box.setCurrentIndex(max(index, 0))
        self.tgt_box.blockSignals(False)
        self.swap_button.setEnabled((self.tgt_box.currentData(), src) in self.directions)

    def _source_changed(self) -> None:
        self._fill_targets(self.tgt_box.currentData())
        self._remember()

    def _remember(self) -> None:
        if self.src_box.currentData() and self.tgt_box.currentData():
            self.settings.set_value("translate/src", self.src_box.currentData())
            self.settings.set_value("translate/tgt", self.tgt_box.currentData())
        self.swap_button.setEnabled((self.tgt_box.currentData(), self.src_box.currentData()) in self.directions)

    def set_direction(self, src: str, tgt: str) -> None:
        self._fill_languages(src, tgt)
        self._remember()

    def swap(self) -> None:
        src, tgt = self.src_box.currentData(), self.tgt_box.currentData()
        if (tgt, src) in self.directions:
            self.set_direction(tgt, src)

    def apply_service_info(self, info: dict[str, Any]) -> None:
        directions = [tuple(d) for d in info.get("directions", [])]
        if directions:
            self.directions = directions
            self._fill_languages(self.src_box.currentData(), self.tgt_box.currentData())

    def retranslate_options(self) -> None:
        for box in (self.src_box, self.tgt_box):
            for i in range(box.count()):
                box.setItemText(i, tr("lang." + box.itemData(i)))
        self.swap_button.setToolTip(tr("translate.swap"))

    # -------------------------------------------------------------- requests
    def request(self, text: str):
        src, tgt = self.src_box.currentData(), self.tgt_box.currentData()
        beam = self.beam_box.value()
        options = TranslateOptions(beam_size=beam, n_best=min(self.nbest_box.value(), beam))
        job = lambda service, cancel: service.translate(text, src, tgt, options)  # noqa: E731
        return job, {"src": src, "tgt": tgt, "beam_size": options.beam_size, "n_best": options.n_best}

    def reply_payload(self, pending: PendingReply, result: Any) -> dict[str, Any]:
        options = TranslateOptions(beam_size=pending.request["beam_size"], n_best=pending.request["n_best"])
        return translation_payload(result, options, pending.worker.seconds)

    def render_reply(self, bubble: MessageBubble, payload: dict[str, Any]) -> None:
        bubble.set_text(payload.get("text", ""))
        bubble.body.setObjectName("translation-text")
        bubble.body.style().unpolish(bubble.body)
        bubble.body.style().polish(bubble.body)
        hyps = payload.get("hypotheses", [])
        options = payload.get("options", {})
        bubble.set_meta(tr("translate.meta", src=tr("lang." + str(payload.get("src"))),
                           tgt=tr("lang." + str(payload.get("tgt"))), model=payload.get("model", ""),
                           beam=options.get("beam_size", "?"), seconds=payload.get("seconds", 0.0)))
        if len(hyps) > 1:
            lines = [f"{i}. {h['text']}   <span style='color:gray'>({h['score']:.3f})</span>"
                     for i, h in enumerate(hyps, 1)]
            alternatives = QLabel("<br>".join(lines))
            alternatives.setObjectName("translation-alternatives")
            alternatives.setTextFormat(Qt.TextFormat.RichText)
            alternatives.setWordWrap(True)
            alternatives.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            alternatives.hide()
            bubble.add_extra(alternatives)
            bubble.add_action(tr("translate.alternatives", n=len(hyps) - 1), alternatives.setVisible, checkable=True)
        attention = payload.get("attention")
        if attention and hyps:
            holder: dict[str, QWidget] = {}

            def show_alignment(on: bool) -> None:
                if on and "view" not in holder:
                    heatmap = AttentionHeatmap(attention, hyps[0].get("pieces", []), payload.get("source_pieces", []))
                    heatmap.setObjectName("attention-heatmap")
                    area = QScrollArea()
                    area.setWidget(heatmap)
                    area.setMinimumHeight(min(heatmap.height() + 20, 420))
                    area.setObjectName("attention-view")
                    holder["view"] = bubble.add_extra(area)
                if "view" in holder:
                    holder["view"].setVisible(on)

            bubble.add_action(tr("translate.alignment"), show_alignment, checkable=True)
