"""The main window: tabs, start-up without a model framework, status bar, menus, languages, self-test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.app import build_window
from desktop.testing import fake_backends

pytest.importorskip("pytestqt")


@pytest.fixture
def window(qtbot):
    win = build_window(fake_backends())
    qtbot.addWidget(win)
    win.show()
    win.start_loading()
    qtbot.waitUntil(win.host.all_settled, timeout=5000)
    yield win
    win.close()
    win.store.close()


def test_window_has_three_chat_tabs(window):
    tabs = window.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Sentiment", "Translate", "Generate"]
    assert "말벗" in window.windowTitle()
    assert all(tab.is_ready() for tab in window.all_tabs())


def test_window_is_shown_before_any_model_framework_is_imported(tmp_path):
    """In a fresh interpreter: main-window build with the real backends imports no framework and is fast."""
    code = (
        "import sys, time, json\n"
        "t0 = time.perf_counter()\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from desktop.app import build_window\n"
        "w = build_window()\n"
        "w.show()\n"
        "app.processEvents()\n"
        "print(json.dumps({'shown_s': w.shown_at - t0,"
        " 'heavy': [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["shown_s"] < 2.0, report


def test_self_test_with_fake_services_reports_every_tab(tmp_path):
    out = subprocess.run([sys.executable, "-m", "desktop.app", "--self-test", "--fake-services", "--timeout", "60"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert report["ok"] is True
    assert report["backends"] == "fake"
    assert set(report["replies"]) == {"sentiment", "translate", "generate"}
    assert all(r["ok"] for r in report["replies"].values())
    assert report["replies"]["generate"]["tokens"] > 0
    assert report["framework_before_show"] == []
    assert report["window_shown_s"] < 2.0
    assert report["responsive"] and report["max_gui_busy_ms"] < 100
    # the self-test leaves the user's history and settings alone
    home = Path(os.environ["MALBEOT_HOME"])
    assert not (home / "history.sqlite3").exists() and not (home / "settings.ini").exists()


def test_status_bar_shows_runtime_model_state_and_last_response(window, qtbot):
    assert window.runtime_label.text() == "Fake · CPU"
    assert "Sentiment ✓" in window.models_label.text() and "Generate ✓" in window.models_label.text()
    tab = window.sentiment_tab
    with qtbot.waitSignal(tab.replyFinished, timeout=5000):
        tab.send("good movie")
    assert window.response_label.text().startswith("Last response")
    gen = window.generate_tab
    with qtbot.waitSignal(gen.replyFinished, timeout=5000):
        gen.max_tokens_box.setValue(8)
        gen.send("ROMEO:")
    assert "tokens/s" in window.response_label.text()


def test_a_missing_service_is_shown_in_its_tab_and_the_others_keep_working(qtbot):
    win = build_window(fake_backends(missing=("translate",)))
    qtbot.addWidget(win)
    win.show()
    win.start_loading()
    qtbot.waitUntil(win.host.all_settled, timeout=5000)
    tab = win.translate_tab
    assert not tab.is_ready()
    assert not tab.notice.isHidden() and "not available" in tab.notice.text()
    assert "no translate model is installed" in tab.notice.text()
    assert not tab.send_button.isEnabled()
    assert "Translate ✗" in win.models_label.text()
    assert tab.send("hello") is None
    with qtbot.waitSignal(win.sentiment_tab.replyFinished, timeout=5000) as blocker:
        win.sentiment_tab.send("great")
    assert blocker.args[0]["label"] == "positive"
    win.close()
    win.store.close()


def test_a_service_this_version_lacks_reads_like_a_missing_model(monkeypatch):
    from desktop import backends

    monkeypatch.setitem(backends.SERVICE_LOCATIONS, "generate", (("nlpcore.no_such_module", "Generator"),
                                                                  ("nlpcore.services", "NoSuchService")))
    with pytest.raises(backends.ServiceUnavailable, match="not part of this version"):
        backends.load_service("generate")


def test_real_backends_turn_package_errors_into_readable_messages(monkeypatch):
    from desktop import backends
    from nlpcore.packages import PackageError

    class Broken:
        @classmethod
        def load(cls):
            raise PackageError("no sentiment model could be loaded: sentiment-ko: missing")

    monkeypatch.setattr(backends, "find_service_class", lambda task: Broken)
    with pytest.raises(backends.ServiceUnavailable, match="sentiment-ko / sentiment-en"):
        backends.real_backends().sentiment()


def test_menus_and_shortcuts(window):
    actions = window._actions
    assert actions["new"].shortcut().toString() == "Ctrl+N"
    assert actions["preferences"].shortcut().toString() == "Ctrl+,"
    assert {"export", "batch", "models", "install", "about", "shortcuts", "quit"} <= set(actions)
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Models", "&Settings", "&Help"]
    window.tabs.setCurrentIndex(2)
    before = len(window.store.conversations("generate"))
    actions["new"].trigger()
    assert len(window.store.conversations("generate")) == before + 1


def test_switching_the_ui_language_to_korean_and_back(window):
    window.settings.set_value("ui/language", "ko")
    assert [window.tabs.tabText(i) for i in range(3)] == ["감성 분석", "번역", "글 생성"]
    assert window.sentiment_tab.send_button.text() == "보내기"
    assert window.menuBar().actions()[0].text() == "파일(&F)"
    window.settings.set_value("ui/language", "en")
    assert window.tabs.tabText(0) == "Sentiment"


def test_every_ui_string_is_in_both_languages():
    from desktop.catalogue import CATALOGUE

    for key, (en, ko) in CATALOGUE.items():
        assert en and ko, key
        assert set(re.findall(r"{(\w+)", en)) == set(re.findall(r"{(\w+)", ko)), key
    source = "\n".join(p.read_text(encoding="utf-8") for p in Path("desktop").rglob("*.py"))
    used = set(re.findall(r"""\btr\(\s*["']([\w.\-]+)["']""", source))
    used = {k for k in used if not k.endswith(".")}
    assert used - set(CATALOGUE) == set()
    for prefix in ("lang.", "label.", "theme.", "sampler.", "action.", "menu."):
        assert any(k.startswith(prefix) for k in CATALOGUE), prefix


def test_dark_theme_applies(window):
    from desktop import theme

    window.settings.set_value("ui/theme", "dark")
    assert theme.colours().dark
    window.settings.set_value("ui/theme", "light")
    assert not theme.colours().dark


def test_settings_dialog_stores_defaults(window, qtbot):
    from desktop.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.fields["generate/top_k"].setValue(7)
    dialog.fields["ui/language"].setCurrentIndex(dialog.fields["ui/language"].findData("ko"))
    dialog.accept()
    assert window.settings.value("generate/top_k") == 7
    assert window.generate_tab.top_k_box.value() == 7  # the tab follows the new default
    assert window.tabs.tabText(1) == "번역"
    window.settings.set_value("ui/language", "en")


def test_settings_survive_a_restart(qtbot):
    from desktop.settings import Settings

    first = Settings()
    first.set_value("translate/beam_size", 3)
    first.set_value("generate/colour_tokens", True)
    first.sync()
    again = Settings()
    assert again.value("translate/beam_size") == 3
    assert again.value("generate/colour_tokens") is True
    assert again.value("generate/top_p") == pytest.approx(0.9)
