"""Chat behaviour with fake services: send, stream, stop, supersede, errors, event-loop gaps."""

from __future__ import annotations

import dataclasses
import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QToolButton

from desktop.app import build_window
from desktop.selftest import GapMeter
from desktop.testing import FakeGenerator, FakeSentiment, FakeTranslator, fake_backends
from desktop.widgets.heatmap import AttentionHeatmap
from desktop.widgets.probability_bar import ProbabilityBar


def open_window(qtbot, backends):
    win = build_window(backends)
    qtbot.addWidget(win)
    win.show()
    win.start_loading()
    qtbot.waitUntil(win.host.all_settled, timeout=5000)
    return win


@pytest.fixture
def window(qtbot):
    win = open_window(qtbot, fake_backends(delay=0.02, piece_delay=0.002))
    yield win
    win.close()
    win.store.close()


def replies(tab):
    return [b for b in tab.chat.bubbles() if b.role != "user"]


def test_enter_sends_and_shift_enter_adds_a_line(window, qtbot):
    tab = window.sentiment_tab
    window.tabs.setCurrentWidget(tab)
    tab.input.setFocus()
    tab.input.insertPlainText("정말 최고")  # typed through an input method; key clicks are ASCII only
    qtbot.keyClick(tab.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(tab.input, "great fun")
    assert tab.input.toPlainText() == "정말 최고\ngreat fun"
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        qtbot.keyClick(tab.input, Qt.Key.Key_Return)
    assert tab.input.toPlainText() == ""
    user, reply = tab.chat.bubbles()
    assert user.role == "user" and user.text() == "정말 최고\ngreat fun"
    assert reply.role == "assistant"


def test_a_message_of_only_invisible_characters_is_not_sent(qtbot):
    service = FakeSentiment()
    win = open_window(qtbot, dataclasses.replace(fake_backends(), sentiment=lambda: service))
    tab = win.sentiment_tab
    tab.input.insertPlainText(" \u200b\ufeff\n\u200e ")  # a zero-width space, a byte-order mark, a direction mark
    tab.input.setFocus()
    qtbot.keyClick(tab.input, Qt.Key.Key_Return)
    qtbot.wait(50)
    assert tab.chat.bubbles() == [] and tab.conversation is None and service.calls == []
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("\u200bgreat fun")
    assert [b.role for b in tab.chat.bubbles()] == ["user", "assistant"] and len(service.calls) == 1
    win.close()
    win.store.close()


def test_sentiment_reply_shows_label_bar_language_and_word_colours(window, qtbot):
    tab = window.sentiment_tab
    with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
        tab.send("The plot was boring but the actors were great")
    payload = blocker.args[0]
    assert payload["kind"] == "sentiment" and payload["model"] == "sentiment-en"
    bubble = replies(tab)[-1]
    bar = bubble.findChild(ProbabilityBar)
    assert bar is not None and bar.value == pytest.approx(payload["score"], abs=1e-6)
    headline = bubble.findChild(QLabel, "sentiment-label").text()
    assert ("Positive" if payload["label"] == "positive" else "Negative") in headline
    words = bubble.findChild(QLabel, "sentiment-words").text()
    assert "rgba(214,69,69," in words and ">boring</span>" in words  # negative word in red
    assert "rgba(31,157,85," in words and ">great</span>" in words  # positive word in green
    assert "English" in bubble.meta.text()


def test_sentiment_model_choice_reaches_the_service(window, qtbot):
    tab = window.sentiment_tab
    tab.model_box.setCurrentIndex(tab.model_box.findData("sentiment-ko"))
    with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
        tab.send("good")
    assert blocker.args[0]["model"] == "sentiment-ko"
    assert window.settings.value("sentiment/model") == "sentiment-ko"


def test_translation_reply_with_alternatives_copy_and_heatmap_on_demand(window, qtbot):
    tab = window.translate_tab
    tab.set_direction("en", "fr")
    tab.beam_box.setValue(4)
    tab.nbest_box.setValue(3)
    with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
        tab.send("hello world")
    payload = blocker.args[0]
    assert payload["text"] == "bonjour monde" and len(payload["hypotheses"]) == 3
    assert payload["options"]["beam_size"] == 4
    bubble = replies(tab)[-1]
    assert bubble.body.text() == "bonjour monde"
    buttons = {b.text(): b for b in bubble.findChildren(QToolButton)}
    alternatives = bubble.findChild(QLabel, "translation-alternatives")
    assert alternatives.isHidden()
    buttons["Alternatives (2)"].click()
    assert not alternatives.isHidden() and "(-0.600)" in alternatives.text()
    assert bubble.findChild(AttentionHeatmap) is None  # drawn only on demand
    buttons["Alignment"].click()
    heatmap = bubble.findChild(AttentionHeatmap)
    assert heatmap is not None and len(heatmap.target) == 2 and len(heatmap.source) == 2
    assert heatmap.cell_at(heatmap.rect().bottomRight()) is None
    buttons["Copy"].click()
    assert QGuiApplication.clipboard().text() == "bonjour monde"


def test_swap_languages(window):
    tab = window.translate_tab
    tab.set_direction("en", "fr")
    tab.swap()
    assert (tab.src_box.currentData(), tab.tgt_box.currentData()) == ("fr", "en")
    assert window.settings.value("translate/src") == "fr"
    tab.set_direction("ko", "en")
    tab.swap()
    assert (tab.src_box.currentData(), tab.tgt_box.currentData()) == ("en", "ko")


def test_generation_streams_piece_by_piece_and_send_turns_into_stop(window, qtbot):
    tab = window.generate_tab
    tab.max_tokens_box.setValue(60)
    tab.seed_box.setValue(3)
    seen = []
    pending = tab.send("ROMEO:")
    pending.worker.signals.yielded.connect(lambda piece: seen.append(piece.text))
    assert tab.send_button.text() == "Stop"
    qtbot.waitUntil(lambda: "writing" in replies(tab)[-1].meta.text(), timeout=5000)
    button_when_answered = []
    tab.replyFinished.connect(lambda payload: button_when_answered.append(tab.send_button.text()))
    with qtbot.waitSignal(tab.replyFinished, timeout=10000) as blocker:
        pass
    payload = blocker.args[0]
    assert payload["tokens"] == 60 and not payload["stopped"]
    assert payload["text"].startswith("".join(seen)[:20])
    # Send is back the moment the answer is in, before the worker thread's end is noticed.
    assert button_when_answered == ["Send"]
    assert tab.send_button.text() == "Send"
    assert replies(tab)[-1].text() == payload["text"]
    assert "tokens/s" in replies(tab)[-1].meta.text()


def start_long_generation(qtbot):
    """(fake generator, window, pending reply) with a 2,000-piece generation streaming."""
    generator = FakeGenerator(piece_delay=0.01)
    backends = dataclasses.replace(fake_backends(), generate=lambda: generator)
    win = open_window(qtbot, backends)
    win.generate_tab.max_tokens_box.setValue(2000)
    pending = win.generate_tab.send("ROMEO:")
    qtbot.waitUntil(lambda: len(pending.items) >= 3, timeout=5000)
    return generator, win, pending


def test_stop_sets_the_cancel_flag_and_keeps_the_partial_text(qtbot):
    generator, win, pending = start_long_generation(qtbot)
    tab = win.generate_tab
    with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
        qtbot.mouseClick(tab.send_button, Qt.MouseButton.LeftButton)  # the Stop button
    assert generator.cancelled.is_set()
    payload = blocker.args[0]
    assert payload["stopped"] and 3 <= payload["tokens"] < 2000
    assert "stopped" in replies(tab)[-1].meta.text()
    stored = win.store.messages(tab.conversation.id)
    assert stored[-1].payload["stopped"] and stored[-1].text == payload["text"]
    win.close()
    win.store.close()


def test_closing_the_window_mid_reply_ignores_the_workers_last_signals(qtbot):
    _, win, pending = start_long_generation(qtbot)
    win.close()  # cancels the generation and waits for the model thread
    win.store.close()
    assert pending.worker.abort_requested and pending.worker.is_done
    qtbot.wait(200)  # the queued returned/finished signals are delivered now; touching the store would raise


def test_a_newer_request_supersedes_the_older_one(qtbot):
    service = FakeSentiment(delay=0.3)
    backends = dataclasses.replace(fake_backends(), sentiment=lambda: service)
    win = open_window(qtbot, backends)
    tab = win.sentiment_tab
    first = tab.send("first text is boring")
    qtbot.waitUntil(lambda: len(service.calls) == 1, timeout=5000)  # the first is running
    third_queued = tab.send("second text")
    with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
        tab.send("third text is great")
    assert blocker.args[0]["text"] == "third text is great"
    qtbot.waitUntil(lambda: not tab.pending, timeout=5000)
    assert first.worker.abort_requested and third_queued.worker.abort_requested
    assert [c[0][0] for c in service.calls] == ["first text is boring", "third text is great"]  # 2nd never ran
    bubbles = replies(tab)
    assert [b.text() for b in bubbles[:2]] == ["Superseded by a newer message."] * 2
    stored = win.store.messages(tab.conversation.id)
    assert [m.role for m in stored] == ["user", "user", "user", "assistant"]
    win.close()
    win.store.close()


def _failing(exc: BaseException):
    class Failing(FakeSentiment):
        def predict(self, texts, model="auto", explain=True):
            raise exc

    return Failing()


@pytest.mark.parametrize("exc, shown", [
    (MemoryError(), "Out of memory"),
    (ValueError("the text is too long"), "the text is too long"),
    (RuntimeError("model file corrupt"), "RuntimeError: model file corrupt"),
])
def test_errors_appear_in_the_bubble_and_other_tabs_keep_working(qtbot, exc, shown):
    backends = dataclasses.replace(fake_backends(), sentiment=lambda: _failing(exc))
    win = open_window(qtbot, backends)
    tab = win.sentiment_tab
    with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
        tab.send("anything")
    assert blocker.args[0]["kind"] == "error"
    bubble = replies(tab)[-1]
    assert bubble.role == "error" and shown in bubble.text()
    assert win.response_label.text() == "Last request failed"
    assert win.store.messages(tab.conversation.id)[-1].role == "error"
    with qtbot.waitSignal(win.translate_tab.replyFinished, timeout=5000) as blocker:
        win.translate_tab.send("hello")
    assert blocker.args[0]["kind"] == "translation"
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):  # the failing tab still answers later requests
        tab.send("again")
    win.close()
    win.store.close()


def test_a_broken_model_load_leaves_a_readable_message(qtbot):
    def broken():
        raise OSError("translate-en-fr/model.keras: corrupted (SHA-256 does not match the card)")

    win = open_window(qtbot, dataclasses.replace(fake_backends(), translate=broken))
    assert "SHA-256 does not match" in win.translate_tab.notice.text()
    assert win.generate_tab.is_ready() and win.sentiment_tab.is_ready()
    win.close()
    win.store.close()


def test_the_gui_thread_stays_responsive_during_a_long_generation(window, qtbot):
    """Sample the event loop every 10 ms while 400 pieces stream: no gap reaches 100 ms.

    A short generation first draws the tab and its first bubbles (one-time layout and
    font work that is not model work); the long one is then measured from Send to the
    stored reply, including the final colouring of all 400 pieces. The GUI thread's own
    CPU time between ticks is held to 100 ms always; wall-clock gaps also include time
    the OS gave other processes, so they are held to 100 ms when the machine has a core
    to spare.
    """
    tab = window.generate_tab
    window.tabs.setCurrentWidget(tab)
    tab.colour_box.setChecked(True)
    tab.max_tokens_box.setValue(5)
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("warm up")
    tab.max_tokens_box.setValue(400)
    meter = GapMeter()
    meter.start()
    with qtbot.waitSignal(tab.replyFinished, timeout=30000) as blocker:
        tab.send("ROMEO:")
    meter.stop()
    assert blocker.args[0]["tokens"] == 400
    assert meter.ticks > 20
    load = os.getloadavg()[0] / (os.cpu_count() or 1) if hasattr(os, "getloadavg") else 0.0
    print(f"max event-loop gap during generation: {meter.max_gap_ms:.1f} ms wall, {meter.max_busy_ms:.1f} ms "
          f"GUI-thread CPU, over {meter.ticks} ticks (load {load:.2f} per core)")
    assert meter.max_busy_ms < 100
    if load < 1.0:
        assert meter.max_gap_ms < 100


def test_regenerate_replaces_the_last_reply(window, qtbot):
    tab = window.generate_tab
    tab.max_tokens_box.setValue(5)
    tab.seed_box.setValue(-1)
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("ROMEO:")
    # The button comes back when the worker's finished signal arrives, which may
    # follow the reply's own signal.
    qtbot.waitUntil(tab.regenerate_button.isEnabled, timeout=5000)
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.regenerate()
    stored = window.store.messages(tab.conversation.id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert len(replies(tab)) == 1 and replies(tab)[0].text() == stored[-1].text


def test_same_seed_same_text_and_colouring_by_probability(window, qtbot):
    tab = window.generate_tab
    tab.max_tokens_box.setValue(12)
    tab.seed_box.setValue(7)
    texts = []
    for _ in range(2):
        with qtbot.waitSignal(tab.replyFinished, timeout=5000) as blocker:
            tab.send("ROMEO:")
        texts.append(blocker.args[0]["text"])
    assert texts[0] == texts[1]
    bubble = replies(tab)[-1]
    assert "<span" not in bubble.body.text()
    tab.colour_box.setChecked(True)
    assert "rgba(230,120,40," in bubble.body.text()
    assert bubble.text() == texts[1]  # copying gives the plain text


def test_copy_a_message(window, qtbot):
    tab = window.sentiment_tab
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("what a wonderful film")
    user = tab.chat.bubbles()[0]
    user.copy_button.click()
    assert QGuiApplication.clipboard().text() == "what a wonderful film"
    replies(tab)[-1].copy_button.click()
    assert QGuiApplication.clipboard().text().startswith("Positive (")


def test_translator_without_a_direction_answers_with_an_error(qtbot):
    class OneWay(FakeTranslator):
        directions = [("en", "fr")]

    win = open_window(qtbot, dataclasses.replace(fake_backends(), translate=OneWay))
    tab = win.translate_tab
    assert [tab.src_box.itemData(i) for i in range(tab.src_box.count())] == ["en"]
    assert not tab.swap_button.isEnabled()
    win.close()
    win.store.close()


def test_workers_report_in_order_and_drop_aborted_results(qtbot):
    from desktop.workers import ModelExecutor

    executor = ModelExecutor()
    events = []

    def setup(worker):
        for name in ("started", "yielded", "returned", "errored", "finished"):
            getattr(worker.signals, name).connect(lambda *args, n=name: events.append(n))

    def job(cancel):
        yield 1
        yield 2

    worker = executor.submit(job, setup=setup)
    qtbot.waitUntil(lambda: worker.is_done, timeout=5000)
    qtbot.waitUntil(lambda: "finished" in events, timeout=5000)
    assert events == ["started", "yielded", "yielded", "returned", "finished"]
    events.clear()

    def slow(cancel):
        for i in range(1000):
            if cancel.is_set():
                return
            yield i

    import time as _time

    def blocking(cancel):
        _time.sleep(0.2)
        return "late"

    first = executor.submit(blocking, key="k", setup=setup)
    second = executor.submit(slow, key="k", setup=setup)  # supersedes the first while it runs
    qtbot.waitUntil(lambda: events.count("finished") == 2, timeout=5000)
    assert first.abort_requested and "returned" in events  # only the second returns
    assert events.count("returned") == 1
    executor.shutdown()


def test_a_model_loaded_by_one_job_is_usable_by_the_next():
    """Keras/TensorFlow keep per-thread state that must outlive a single job (a pool that gives
    every job a fresh Python thread state crashes here, in native code)."""
    import subprocess
    import sys

    code = (
        "from PySide6.QtCore import QCoreApplication\n"
        "app = QCoreApplication([])\n"
        "from desktop.workers import ModelExecutor\n"
        "ex = ModelExecutor()\n"
        "out = {}\n"
        "def load(cancel):\n"
        "    import keras\n"
        "    out['layer'] = keras.layers.LSTM(4)\n"
        "def use(cancel):\n"
        "    out['layer'].build((None, 3, 2))\n"
        "    out['ok'] = out['layer'].built\n"
        "ex.submit(load); ex.submit(use)\n"
        "assert ex.wait_idle(120000)\n"
        "assert out.get('ok') is True, out\n"
        "ex.shutdown()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
