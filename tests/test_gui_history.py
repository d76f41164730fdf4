"""Conversations: persistence across a restart, the side list, export, batch files, installing packages."""

from __future__ import annotations

import csv
import dataclasses
import json
import sqlite3
import zipfile

import pytest
from PySide6.QtWidgets import QLabel, QMessageBox

from desktop import batch
from desktop.app import build_window
from desktop.store import SCHEMA_VERSION, HistoryStore, StoreError
from desktop.testing import FakeSentiment, FakeTranslator, fake_backends
from desktop.widgets.probability_bar import ProbabilityBar
from nlpcore.services import CancelFlag


def open_window(qtbot, backends=None):
    win = build_window(backends or fake_backends())
    qtbot.addWidget(win)
    win.show()
    win.start_loading()
    qtbot.waitUntil(win.host.all_settled, timeout=5000)
    return win


def close(win):
    win.close()
    win.store.close()


def test_history_survives_a_restart(qtbot, _user_home):
    win = open_window(qtbot)
    with qtbot.waitSignal(win.sentiment_tab.replyFinished, timeout=5000):
        win.sentiment_tab.send("이 영화 최고")
    with qtbot.waitSignal(win.translate_tab.replyFinished, timeout=5000):
        win.translate_tab.send("hello world")
    win.generate_tab.max_tokens_box.setValue(6)
    with qtbot.waitSignal(win.generate_tab.replyFinished, timeout=5000):
        win.generate_tab.send("ROMEO:")
    generated = win.generate_tab.last_reply_bubble().text()
    close(win)
    assert (_user_home / "history.sqlite3").is_file()

    again = open_window(qtbot)
    sentiment = again.sentiment_tab
    assert sentiment.conversations.titles() == ["이 영화 최고"]
    user, reply = sentiment.chat.bubbles()
    assert user.text() == "이 영화 최고"
    assert reply.findChild(ProbabilityBar) is not None  # rich replies are redrawn from their payload
    assert "최고" in reply.findChild(QLabel, "sentiment-words").text()
    translate = again.translate_tab
    assert translate.chat.bubbles()[-1].body.text() == "bonjour monde"
    assert again.generate_tab.chat.bubbles()[-1].text() == generated
    assert again.generate_tab.regenerate_button.isEnabled()
    close(again)


def test_new_rename_delete_and_clear_conversations(qtbot):
    win = open_window(qtbot)
    tab = win.sentiment_tab
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("first conversation")
    first = tab.conversation.id
    tab.new_conversation()
    assert tab.chat.bubbles() == [] and tab.conversations.titles()[0] == "New conversation"
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("second one")
    assert tab.conversations.titles() == ["second one", "first conversation"]  # titled by the first message
    tab.rename_conversation("Reviews")
    assert tab.conversations.titles()[0] == "Reviews"
    tab.open_conversation(first)
    assert tab.chat.bubbles()[0].text() == "first conversation"
    tab.clear_conversation(confirm=False)
    assert tab.chat.bubbles() == [] and win.store.messages(first) == []
    tab.delete_conversation(confirm=False)
    assert tab.conversations.titles() == ["Reviews"]
    assert tab.conversation.title == "Reviews" and len(tab.chat.bubbles()) == 2
    assert win.store.conversations("translate") == []  # each tab has its own list
    close(win)


def test_delete_asks_first(qtbot, monkeypatch):
    win = open_window(qtbot)
    tab = win.translate_tab
    tab.new_conversation("keep me")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    tab.delete_conversation()
    assert tab.conversations.titles() == ["keep me"]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    tab.delete_conversation()
    assert tab.conversations.titles() == []
    close(win)


def test_a_reply_lands_in_the_conversation_it_was_asked_in(qtbot):
    backends = dataclasses.replace(fake_backends(), sentiment=lambda: FakeSentiment(delay=0.3))
    win = open_window(qtbot, backends)
    tab = win.sentiment_tab
    tab.send("slow question")
    asked_in = tab.conversation.id
    tab.new_conversation("elsewhere")
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        pass
    assert [m.role for m in win.store.messages(asked_in)] == ["user", "assistant"]
    assert tab.chat.bubbles() == []  # the other conversation is on screen, untouched
    close(win)


def test_export_markdown_and_json(qtbot, tmp_path):
    win = open_window(qtbot)
    tab = win.translate_tab
    tab.nbest_box.setValue(2)
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("hello world")
    md = tab.export_conversation(tmp_path / "chat.md").read_text(encoding="utf-8")
    assert md.startswith("# hello world\n")
    assert "### You\n\nhello world" in md and "### Malbeot\n\nbonjour monde" in md
    assert "2. monde bonjour (score -0.600)" in md
    body = json.loads(tab.export_conversation(tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert body["tab"] == "translate" and body["title"] == "hello world"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    reply = body["messages"][1]["payload"]
    assert reply["kind"] == "translation" and reply["attention"] and reply["source_pieces"] == ["▁hello", "▁world"]
    close(win)


def test_store_schema_version_and_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    conversation = store.create("sentiment", "t")
    store.add_message(conversation.id, "user", "안녕", {"k": [1, 2]})
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        HistoryStore(path)


def test_deleting_a_conversation_deletes_its_messages(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    c = store.create("generate", "x")
    store.add_message(c.id, "user", "a")
    store.delete(c.id)
    assert store._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    store.close()


# ------------------------------------------------------------------ batch files
def read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_batch_sentiment_of_a_csv_file(tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("id,text\n1,great film\n2,boring plot\n3,\n", encoding="utf-8")
    output = batch.default_output(source, "sentiment")
    assert output.name == "reviews.sentiment.csv"
    steps = list(batch.sentiment_job(source, output)(FakeSentiment(), CancelFlag()))
    assert steps[0] == (0, 3) and steps[-1] == (3, 3)
    rows = read_csv(output)
    assert [r["label"] for r in rows] == ["positive", "negative", ""]
    assert rows[2]["error"] == "empty text"


def test_batch_translation_of_a_text_file_can_be_cancelled(tmp_path):
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(f"hello {i}" for i in range(40)) + "\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    cancel = CancelFlag()
    done = []
    for step in batch.translate_job(source, output, "en", "fr")(FakeTranslator(), cancel):
        done.append(step)
        if step[0] >= batch.TRANSLATE_CHUNK:
            cancel.set()
    rows = read_csv(output)
    assert len(rows) == batch.TRANSLATE_CHUNK and rows[0]["translation"] == "bonjour 0"


def test_batch_dialog_runs_with_progress(qtbot, tmp_path, monkeypatch):
    from desktop.batch_dialog import BatchDialog

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: shown.append(a[2]))
    win = open_window(qtbot)
    source = tmp_path / "in.txt"
    source.write_text("good\nbad\n", encoding="utf-8")
    dialog = BatchDialog(win.host, win.settings, "sentiment", win)
    qtbot.addWidget(dialog)
    dialog.input_edit.setText(str(source))
    dialog._task_changed()
    assert dialog.output_edit.text().endswith("in.sentiment.csv")
    worker = dialog.start()
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    assert worker.is_done and "Done" in shown[0]
    assert len(read_csv(tmp_path / "in.sentiment.csv")) == 2
    close(win)


# ------------------------------------------------------------------ model packages
def _package(folder, name="sentiment-xx"):
    """A minimal package folder with a valid card (no model inside: enough to list and install)."""
    from nlpcore.packages import CARD_FILE, CONFIG_FILE, DataSource, FileEntry, ModelCard, sha256_file

    folder.mkdir(parents=True)
    (folder / CONFIG_FILE).write_text("model: {}\n", encoding="utf-8")
    card = ModelCard(name=name, task="sentiment", languages=("xx",), description="A test package.",
                     data=(DataSource("Test reviews", rows=1200, license="CC0"),), license="Apache-2.0",
                     metrics={"validation (10 % hash split)": {"accuracy": 0.875, "f1": 0.86}},
                     files={CONFIG_FILE: FileEntry((folder / CONFIG_FILE).stat().st_size, sha256_file(folder / CONFIG_FILE))})
    (folder / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    return folder


def test_install_a_package_from_a_folder_or_a_zip(tmp_path):
    from desktop.install import install_from
    from nlpcore.assets import user_models_dir

    target, card = install_from(_package(tmp_path / "src" / "sentiment-xx"))
    assert target == user_models_dir() / "sentiment-xx" and card.license == "Apache-2.0"
    archive = tmp_path / "pkg.zip"
    pkg = _package(tmp_path / "zsrc" / "sentiment-yy", "sentiment-yy")
    with zipfile.ZipFile(archive, "w") as zf:
        for f in pkg.iterdir():
            zf.write(f, f"sentiment-yy/{f.name}")
    target, card = install_from(archive)
    assert card.name == "sentiment-yy" and (target / "card.json").is_file()


def test_install_refuses_a_corrupt_package_and_a_zip_that_escapes(tmp_path):
    from desktop.install import install_from
    from nlpcore.packages import PackageError

    pkg = _package(tmp_path / "bad")
    (pkg / "config.yaml").write_text("changed: true\n", encoding="utf-8")
    with pytest.raises(PackageError, match="config.yaml"):
        install_from(pkg)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(PackageError, match="outside"):
        install_from(evil)


def test_models_dialog_lists_cards_and_installs(qtbot, tmp_path, monkeypatch):
    from desktop.models_dialog import ModelsDialog

    messages = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(("info", a[2])))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(("warning", a[2])))
    win = open_window(qtbot)
    dialog = ModelsDialog(win.host, win)
    qtbot.addWidget(dialog)
    dialog.install(path=str(_package(tmp_path / "sentiment-xx")))
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    assert messages[0][0] == "info" and "sentiment-xx" in messages[0][1]
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    row = names.index("sentiment-xx")
    dialog.table.selectRow(row)
    dialog._show(row)
    card = dialog.details.toPlainText()
    for expected in ("Apache-2.0", "Test reviews", "1,200 rows", "CC0", "accuracy = 0.875", "validation (10 % hash split)"):
        assert expected in card
    qtbot.waitUntil(win.host.all_settled, timeout=5000)  # the sentiment tab reloaded its model
    bad = _package(tmp_path / "broken")
    (bad / "config.yaml").write_text("tampered\n", encoding="utf-8")
    dialog.install(path=str(bad))
    qtbot.waitUntil(lambda: len(messages) == 2, timeout=5000)
    assert messages[1][0] == "warning" and "corrupted" in messages[1][1]
    close(win)
