import json
import os
import subprocess
import sys

import pytest

from nlpcore import cli, packages
from test_packages import CARD, TinyConfig, tiny_model

SUBCOMMANDS = ["train", "eval", "sentiment", "translate", "generate", "score", "models", "bench"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: nlpcore {name}" in out and "--json" in out


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "nlpcore", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "sentiment" in result.stdout


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["translate", "--src", "xx", "--tgt", "en"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_models_list_show_verify(tmp_path, tiny_tokenizer, _user_home, capsys):
    assert cli.main(["models", "--json"]) == 0
    config = TinyConfig(vocab_size=tiny_tokenizer.vocab_size)
    source = packages.write_package(tmp_path / "tiny-test", CARD, config, {"model": tiny_model(config)})
    assert cli.main(["models", "install", str(source.path)]) == 0
    assert "installed tiny-test" in capsys.readouterr().out
    assert cli.main(["models", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    mine = [r for r in rows if r["name"] == "tiny-test"]
    assert mine and mine[0]["task"] == "test" and mine[0]["size_bytes"] > 0
    assert cli.main(["models", "verify", "tiny-test"]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli.main(["models", "show", "tiny-test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["license"] == "CC0-1.0"
    (_user_home / "models" / "tiny-test" / "config.yaml").write_text("units: 9\n")
    assert cli.main(["models", "verify", "tiny-test"]) == 1
    assert "config.yaml" in capsys.readouterr().err
    assert cli.main(["models", "verify", "nothing-here"]) == 1
    assert "no model package named" in capsys.readouterr().err
