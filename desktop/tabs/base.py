"""What the three tabs share: conversations, the transcript, the input box,
the options panel, and sending a request to the model thread.

A tab subclass says how to build its options, how to turn the input into a
job for its service (:meth:`ChatTab.request`), how to turn the job's result
into a payload (:meth:`ChatTab.reply_payload`) and how to draw a payload in a
bubble (:meth:`ChatTab.render_reply`). Live replies and replies restored from
the history are drawn by the same code, from the same payload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from nlpcore.text import is_blank

from .. import export
from ..host import FAILED, LOADING, READY, ModelHost
from ..i18n import i18n, tr
from ..records import describe_error, error_payload, options_payload, reply_text
from ..settings import Settings
from ..store import Conversation, HistoryStore, Message
from ..widgets.bubble import MessageBubble
from ..widgets.chat_input import ChatInput
from ..widgets.chat_view import ChatView
from ..workers import Worker

Job = Callable[[Any, Any], Any]  # (service, cancel) -> result | iterator of pieces
TITLE_LENGTH = 40


@dataclass(eq=False)
class PendingReply:
    """One request in flight: where its reply goes and what has streamed so far."""

    worker: Worker
    conversation_id: int
    prompt: str
    request: dict[str, Any]
    bubble: MessageBubble | None
    submitted: float = field(default_factory=time.perf_counter)
    items: list[Any] = field(default_factory=list)
    done: bool = False
    dirty: bool = False

    def live_bubble(self) -> MessageBubble | None:
        return self.bubble if self.bubble is not None and isValid(self.bubble) else None


class ChatTab(QWidget):
    """One chat-style tab over one model service."""

    task = ""  # "sentiment" | "translate" | "generate"
    title_key = ""
    streaming = False  # Send turns into Stop while a reply streams

    responded = Signal(str)  # a status-bar line about the last reply
    replyFinished = Signal(object)  # the payload of every completed reply

    def __init__(self, host: ModelHost, store: HistoryStore, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"{self.task}-tab")
        self.host = host
        self.store = store
        self.settings = settings
        self.conversation: Conversation | None = None
        self.pending: list[PendingReply] = []
        self._form_rows: list[tuple[QLabel, str]] = []

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        from ..widgets.conversation_list import ConversationList

        self.conversations = ConversationList()
        self.conversations.selected.connect(self.open_conversation)
        self.conversations.newRequested.connect(self.new_conversation)
        self.conversations.renameRequested.connect(lambda: self.rename_conversation())
        self.conversations.deleteRequested.connect(lambda: self.delete_conversation())
        self.conversations.clearRequested.connect(lambda: self.clear_conversation())
        splitter.addWidget(self.conversations)

        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 8)
        column.setSpacing(6)
        self.notice = QLabel()
        self.notice.setObjectName("tab-notice")
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.loading_bar = QProgressBar()
        self.loading_bar.setRange(0, 0)
        self.loading_bar.setMaximumHeight(4)
        self.loading_bar.setTextVisible(False)
        column.addWidget(self.loading_bar)
        column.addWidget(self.notice)
        self.chat = ChatView()
        column.addWidget(self.chat, 1)
        row = QHBoxLayout()
        row.setContentsMargins(12, 0, 12, 0)
        self.input = ChatInput()
        self.input.submitted.connect(self._enter_pressed)
        row.addWidget(self.input, 1)
        self.extra_buttons = QHBoxLayout()
        row.addLayout(self.extra_buttons)
        self.send_button = QPushButton()
        self.send_button.setObjectName("send-button")
        self.send_button.clicked.connect(self.send_or_stop)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        column.addLayout(row)
        splitter.addWidget(centre)

        options = QScrollArea()
        options.setWidgetResizable(True)
        options.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        options.setFrameShape(QScrollArea.Shape.NoFrame)
        options.setMinimumWidth(250)
        options.setMaximumWidth(360)
        panel = QWidget()
        panel_layout = QVBoxLayout(panel)
        self.options_box = QGroupBox()
        self.form = QFormLayout(self.options_box)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        panel_layout.addWidget(self.options_box)
        panel_layout.addStretch(1)
        options.setWidget(panel)
        self.options_panel = options
        splitter.addWidget(options)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([200, 640, 300])
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)

        self._detached = False
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(40)
        self._flush_timer.timeout.connect(self._flush_streams)

        self.build_options(self.form)
        host.stateChanged.connect(self._state_changed)
        i18n().languageChanged.connect(self._language_changed)
        self.retranslate()
        self.reload_conversations(select_latest=True)
        self._state_changed(self.task)

    # ================================================================ hooks for the tabs
    def build_options(self, form: QFormLayout) -> None:
        """Add the tab's option controls."""

    def retranslate_options(self) -> None:
        """Refresh option texts that :meth:`add_row` does not cover."""

    def apply_service_info(self, info: dict[str, Any]) -> None:
        """The service is ready: adapt the options to what it offers (``models``, ``directions``)."""

    def request(self, text: str) -> tuple[Job, dict[str, Any]]:
        """The job for ``text`` from the current options, and a record of the request (stored with it)."""
        raise NotImplementedError

    def reply_payload(self, pending: PendingReply, result: Any) -> dict[str, Any]:
        raise NotImplementedError

    def render_reply(self, bubble: MessageBubble, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def render_stream(self, pending: PendingReply, bubble: MessageBubble) -> None:
        """Show what has streamed so far (streaming tabs)."""

    def status_line(self, payload: dict[str, Any]) -> str:
        return tr("status.response", seconds=payload.get("seconds", 0.0))

    # ================================================================ helpers for the tabs
    def add_row(self, key: str, widget: QWidget) -> QWidget:
        label = QLabel()
        self._form_rows.append((label, key))
        self.form.addRow(label, widget)
        return widget

    # ================================================================ state
    def is_ready(self) -> bool:
        return self.host.is_ready(self.task)

    def _state_changed(self, task: str) -> None:
        if task != self.task:
            return
        state = self.host.state(task)
        self.loading_bar.setVisible(state.state == LOADING)
        self.notice.setProperty("error", state.state == FAILED)
        self.notice.style().unpolish(self.notice)
        self.notice.style().polish(self.notice)
        if state.state == READY:
            self.notice.hide()
            self.apply_service_info(state.info)
        else:
            self.notice.show()
            self.notice.setText(tr("tab.loading") if state.state == LOADING else
                                tr("tab.unavailable", error=state.error) if state.state == FAILED else "")
        self._update_controls()

    def _update_controls(self) -> None:
        ready = self.is_ready()
        active = self.active_pending() is not None
        stop = self.streaming and active
        self.send_button.setText(tr("send.stop") if stop else tr("send.send"))
        self.send_button.setProperty("stop", stop)
        self.send_button.style().unpolish(self.send_button)
        self.send_button.style().polish(self.send_button)
        self.send_button.setEnabled(ready or stop)
        self.input.setPlaceholderText(tr(f"{self.task}.placeholder") if ready else tr("tab.wait_placeholder"))

    def detach(self) -> None:
        """Stop following application-wide signals and workers' replies (the window is closing)."""
        self._detached = True
        i18n().languageChanged.disconnect(self._language_changed)
        self.host.stateChanged.disconnect(self._state_changed)
        self._flush_timer.stop()

    def _language_changed(self, _language: str) -> None:
        self.retranslate()

    def retranslate(self) -> None:
        self.options_box.setTitle(tr("options.title"))
        for label, key in self._form_rows:
            label.setText(tr(key))
        self.conversations.retranslate()
        self.chat.set_placeholder(tr(f"{self.task}.empty"))
        self.retranslate_options()
        self._state_changed(self.task)
        if self.conversation is not None:
            self.open_conversation(self.conversation.id, force=True)

    # ================================================================ conversations
    def reload_conversations(self, select_latest: bool = False) -> None:
        items = self.store.conversations(self.task)
        if select_latest:
            self.conversation = items[0] if items else None
        current = self.conversation.id if self.conversation else None
        self.conversations.set_conversations([(c.id, c.title) for c in items], current)
        if select_latest:
            self._show_messages()

    def open_conversation(self, conversation_id: int, force: bool = False) -> None:
        if not force and self.conversation is not None and self.conversation.id == conversation_id:
            return
        self.conversation = self.store.conversation(conversation_id)
        self._show_messages()
        self.reload_conversations()

    def _show_messages(self) -> None:
        for pending in self.pending:
            pending.bubble = None
        self.chat.clear()
        if self.conversation is None:
            return
        for message in self.store.messages(self.conversation.id):
            self._add_message_bubble(message)
        for pending in self.pending:
            if pending.conversation_id == self.conversation.id and not pending.done:
                pending.bubble = self.chat.add_bubble(self._pending_bubble())
                self.render_stream(pending, pending.bubble)
        self.chat.scroll_to_bottom()

    def _add_message_bubble(self, message: Message) -> MessageBubble:
        if message.role == "user":
            bubble = MessageBubble("user", message.text)
        else:
            bubble = MessageBubble("assistant")
            self._render(bubble, message.payload or error_payload(message.text))
        bubble.message_id = message.id
        return self.chat.add_bubble(bubble)

    def _render(self, bubble: MessageBubble, payload: dict[str, Any]) -> None:
        bubble.payload = payload
        bubble.clear_extras()
        bubble.set_meta("")
        if payload.get("kind") == "error":
            bubble.set_error(payload.get("message") or payload.get("text", ""))
        else:
            bubble.set_role("assistant")
            self.render_reply(bubble, payload)

    def new_conversation(self, title: str | None = None) -> Conversation:
        self.conversation = self.store.create(self.task, title or tr("conv.untitled"))
        self._show_messages()
        self.reload_conversations()
        self.input.setFocus()
        return self.conversation

    def rename_conversation(self, title: str | None = None) -> None:
        if self.conversation is None:
            return
        if title is None:
            title, ok = QInputDialog.getText(self, tr("conv.rename"), tr("conv.rename_prompt"), text=self.conversation.title)
            if not ok:
                return
        title = title.strip()
        if title:
            self.store.rename(self.conversation.id, title)
            self.conversation = self.store.conversation(self.conversation.id)
            self.reload_conversations()

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def delete_conversation(self, confirm: bool = True) -> None:
        if self.conversation is None:
            return
        if confirm and not self._confirm(tr("conv.delete"), tr("conv.delete_confirm", title=self.conversation.title)):
            return
        self.store.delete(self.conversation.id)
        self.reload_conversations(select_latest=True)

    def clear_conversation(self, confirm: bool = True) -> None:
        if self.conversation is None:
            return
        if confirm and not self._confirm(tr("conv.clear"), tr("conv.clear_confirm", title=self.conversation.title)):
            return
        self.store.clear(self.conversation.id)
        self._show_messages()

    def export_conversation(self, path: str | Path) -> Path:
        """Write the current conversation to ``path``: JSON for ``.json``, Markdown otherwise."""
        if self.conversation is None:
            raise ValueError(tr("export.nothing"))
        path = Path(path)
        messages = self.store.messages(self.conversation.id)
        body = export.to_json(self.conversation, messages) if path.suffix.lower() == ".json" \
            else export.to_markdown(self.conversation, messages)
        path.write_text(body, encoding="utf-8")
        return path

    # ================================================================ sending
    def active_pending(self) -> PendingReply | None:
        live = [p for p in self.pending if not p.done and not p.worker.abort_requested]
        return live[-1] if live else None

    def _enter_pressed(self) -> None:
        """Enter sends; while a reply streams it waits (only the Stop button stops)."""
        if not (self.streaming and self.active_pending() is not None):
            self.send()

    def send_or_stop(self) -> None:
        if self.streaming and self.active_pending() is not None:
            self.stop()
        else:
            self.send()

    def send(self, text: str | None = None) -> PendingReply | None:
        """Send ``text`` (default: the input box) as a new message; supersedes this tab's previous request."""
        from_input = text is None
        text = (self.input.toPlainText() if from_input else text).strip()
        if is_blank(text):  # nothing to see: spaces, or only invisible characters
            return None
        if not self.is_ready():
            self.notice.show()
            return None
        if self.conversation is None:
            self.conversation = self.store.create(self.task, self._title_for(text))
            self.reload_conversations()
        elif self.conversation.title == tr("conv.untitled") and not self.store.messages(self.conversation.id):
            self.rename_conversation(self._title_for(text))
        try:
            job, request = self.request(text)
        except ValueError as exc:  # options the service would refuse
            message = self.store.add_message(self.conversation.id, "user", text)
            self._add_message_bubble(message)
            error = self.store.add_message(self.conversation.id, "error", str(exc), error_payload(str(exc)))
            self._add_message_bubble(error)
            if from_input:
                self.input.clear()
            return None
        message = self.store.add_message(self.conversation.id, "user", text,
                                         {"request": {k: options_payload(v) if is_dataclass(v) else v
                                                      for k, v in request.items()}})
        self._add_message_bubble(message)
        if from_input:
            self.input.clear()
        return self._submit(text, job, request)

    def _submit(self, text: str, job: Job, request: dict[str, Any]) -> PendingReply:
        for old in self.pending:
            if not old.done:
                self._supersede(old)
        bubble = self.chat.add_bubble(self._pending_bubble())
        conversation_id = self.conversation.id
        made: list[PendingReply] = []

        def setup(worker: Worker) -> None:
            pending = PendingReply(worker, conversation_id, text, request, bubble)
            made.append(pending)
            self.pending.append(pending)
            signals = worker.signals
            # A worker's last signals can arrive after the window closed and the
            # history store with it: a detached tab ignores them.
            signals.yielded.connect(lambda item: self._detached or self._yielded(pending, item))
            signals.returned.connect(lambda result: self._detached or self._returned(pending, result))
            signals.errored.connect(lambda exc: self._detached or self._errored(pending, exc))
            signals.finished.connect(lambda: self._detached or self._finished(pending))

        self.host.run(self.task, job, key=self.task, setup=setup)
        pending = made[0]
        if self.streaming:
            self._flush_timer.start()
        self.chat.scroll_to_bottom()
        self._update_controls()
        return pending

    def _pending_bubble(self) -> MessageBubble:
        bubble = MessageBubble("assistant", tr("reply.pending"))
        bubble.setProperty("pending", True)
        return bubble

    def _supersede(self, pending: PendingReply) -> None:
        pending.worker.abort()
        self.host.executor.supersede(self.task)
        pending.done = True
        bubble = pending.live_bubble()
        if bubble is not None:
            bubble.set_text(tr("reply.superseded"))
            bubble.set_meta("")

    def stop(self) -> None:
        """Stop the reply that is streaming; what arrived so far is kept."""
        pending = self.active_pending()
        if pending is not None:
            pending.worker.cancel.set()

    def _yielded(self, pending: PendingReply, item: Any) -> None:
        if pending.done:
            return
        pending.items.append(item)
        pending.dirty = True

    def _flush_streams(self) -> None:
        for pending in self.pending:
            if pending.dirty and not pending.done:
                pending.dirty = False
                bubble = pending.live_bubble()
                if bubble is not None:
                    self.render_stream(pending, bubble)
        if not any(not p.done for p in self.pending):
            self._flush_timer.stop()

    def _returned(self, pending: PendingReply, result: Any) -> None:
        if pending.done:
            return
        try:
            payload = self.reply_payload(pending, result)
        except Exception as exc:  # a malformed result is still the user's answer: say so
            self._errored(pending, exc)
            return
        pending.done = True
        role = "error" if payload.get("kind") == "error" else "assistant"
        message = self.store.add_message(pending.conversation_id, role, reply_text(payload), payload)
        bubble = pending.live_bubble()
        if bubble is not None:
            bubble.setProperty("pending", False)
            bubble.message_id = message.id
            self._render(bubble, payload)
        self._update_controls()  # Send is back as soon as the answer is in, not when the thread ends
        self.responded.emit(self.status_line(payload))
        self.replyFinished.emit(payload)

    def _errored(self, pending: PendingReply, exc: BaseException) -> None:
        if pending.done:
            return
        pending.done = True
        text = describe_error(exc)
        payload = error_payload(text)
        message = self.store.add_message(pending.conversation_id, "error", text, payload)
        bubble = pending.live_bubble()
        if bubble is not None:
            bubble.setProperty("pending", False)
            bubble.message_id = message.id
            self._render(bubble, payload)
        self._update_controls()
        self.responded.emit(tr("status.failed"))
        self.replyFinished.emit(payload)

    def _finished(self, pending: PendingReply) -> None:
        if not pending.done:  # aborted before it could answer
            pending.done = True
        if pending in self.pending:
            self.pending.remove(pending)
        self._update_controls()

    def _title_for(self, text: str) -> str:
        line = " ".join(text.split())
        return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"

    def last_reply_bubble(self) -> MessageBubble | None:
        bubbles = [b for b in self.chat.bubbles() if b.role != "user"]
        return bubbles[-1] if bubbles else None
