"""The main window: tabs, start-up without a model framework, status bar, menus, languages, self-test."""

from __future__ import annotations

import json
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
