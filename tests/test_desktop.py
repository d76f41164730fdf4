from desktop.app import TABS, build_window


def test_window_has_three_tabs(qtbot):
    window = build_window()
    qtbot.addWidget(window)
    window.show()
    tabs = window.centralWidget()
    assert [tabs.tabText(i) for i in range(tabs.count())] == [title for title, _ in TABS]
    assert "말벗" in window.windowTitle()
