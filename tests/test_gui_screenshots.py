"""Screenshots of each tab (fake services), saved for review and for the README.

The PNGs go to ``$MALBEOT_SCREENSHOTS`` when set, else to pytest's temporary
folder; their paths are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QToolButton

from desktop.app import build_window
from desktop.testing import fake_backends


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MALBEOT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fill(win, qtbot):
    s, t, g = win.sentiment_tab, win.translate_tab, win.generate_tab
    for text in ("이 영화 정말 최고였다! 배우들 연기가 좋았고 지루한 장면이 하나도 없었다",
                 "The plot was boring and the ending was the worst, but the music was great"):
        with qtbot.waitSignal(s.replyFinished, timeout=5000):
            s.send(text)
    t.set_direction("en", "fr")
    t.nbest_box.setValue(3)
    with qtbot.waitSignal(t.replyFinished, timeout=5000):
        t.send("hello world I love you")
    bubble = t.last_reply_bubble()
    for button in bubble.findChildren(QToolButton):
        if button.isCheckable():
            button.setChecked(True)
    g.max_tokens_box.setValue(45)
    g.seed_box.setValue(4)
    g.colour_box.setChecked(True)
    with qtbot.waitSignal(g.replyFinished, timeout=5000):
        g.send("Shall I compare thee")


@pytest.mark.parametrize("language, theme", [("en", "light"), ("ko", "dark")])
def test_screenshots_of_every_tab(qtbot, shots_dir, language, theme):
    win = build_window(fake_backends(delay=0.03, piece_delay=0.01))
    qtbot.addWidget(win)
    win.settings.set_value("ui/language", language)
    win.settings.set_value("ui/theme", theme)
    win.resize(1280, 800)
    win.show()
    win.start_loading()
    qtbot.waitUntil(win.host.all_settled, timeout=5000)
    _fill(win, qtbot)
    for index, tab in enumerate(win.all_tabs()):
        win.tabs.setCurrentIndex(index)
        qtbot.waitExposed(tab)
        tab.chat.scroll_to_bottom()
        qtbot.wait(50)  # let the scroll position settle before the grab
        path = shots_dir / f"{tab.task}-{language}-{theme}.png"
        assert win.grab().save(str(path))
        assert path.stat().st_size > 10_000
        print(f"screenshot: {path}")
    win.settings.set_value("ui/theme", "light")
    win.settings.set_value("ui/language", "en")
    win.close()
    win.store.close()
