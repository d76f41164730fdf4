"""End to end on the real shipped models: ``malbeot --self-test`` loads them, sends one
message through each tab and checks the replies arrived.

Skips (naming the packages) until the sentiment, translation and generation
packages are installed; with them installed it must pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nlpcore.packages import PackageError, iter_packages

NEEDED = {
    "sentiment": ("sentiment-ko", "sentiment-en"),
    "translation": ("translate-",),
    "generation": ("generate-en", "generate-ko"),
}


def missing_packages() -> list[str]:
    cards = [card for _, card in iter_packages() if not isinstance(card, PackageError)]
    missing = []
    for task, names in NEEDED.items():
        if not any(card.task == task and card.name.startswith(names) for card in cards):
            missing.append(" or ".join(n + ("<src>-<tgt>" if n.endswith("-") else "") for n in names))
    return missing


@pytest.mark.slow
def test_self_test_on_the_real_models():
    missing = missing_packages()
    if missing:
        pytest.skip(f"needs the model packages {'; '.join(missing)} (not installed yet)")
    env = {k: v for k, v in os.environ.items() if k != "MALBEOT_HOME"}
    env["MALBEOT_HOME"] = os.environ["MALBEOT_HOME"]  # the test's empty user folder: shipped models only
    out = subprocess.run([sys.executable, "-m", "desktop.app", "--self-test", "--timeout", "500"],
                         capture_output=True, text=True, timeout=560, env=env)
    assert "{" in out.stdout, out.stderr[-3000:]
    report = json.loads(out.stdout[out.stdout.index("{"):])
    print(json.dumps(report, ensure_ascii=False, indent=1))
    assert report["backends"] == "real"
    assert report["framework_before_show"] == []
    for task, reply in report["replies"].items():
        assert reply["ok"], (task, reply)
        assert reply.get("text"), (task, reply)
    assert report["replies"]["generate"]["tokens"] > 0
    assert report["runtime"].startswith(("TensorFlow", "JAX", "PyTorch"))
    assert report["responsive"], report
    assert out.returncode == 0, out.stderr[-3000:]
