from dataclasses import dataclass, field

import pytest

from nlpcore.config import ConfigError, from_dict, load_config, save_config, to_dict, to_yaml, from_yaml
from nlpcore.tokenizer import TokenizerConfig


@dataclass(frozen=True)
class Inner:
    units: int = 64
    bidirectional: bool = True


@dataclass(frozen=True)
class Outer:
    name: str
    layers: tuple[Inner, ...] = (Inner(),)
    dropout: float = 0.1
    pooling: str | None = None
    tags: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")


def test_yaml_round_trip(tmp_path):
    config = Outer("m", (Inner(32, False), Inner(16)), dropout=0.25, pooling="max", tags={"a": 1})
    path = save_config(config, tmp_path / "c.yaml")
    assert load_config(Outer, path) == config
    assert to_dict(config)["layers"][0] == {"units": 32, "bidirectional": False}
    tok = TokenizerConfig(vocab_size=8000, user_symbols=("<2fr>",))
    assert from_yaml(TokenizerConfig, to_yaml(tok)) == tok


def test_defaults_and_int_to_float():
    config = from_dict(Outer, {"name": "x", "dropout": 0})
    assert config.layers == (Inner(),) and isinstance(config.dropout, float)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "x", "layer": []}, "unknown key(s) layer"),
        ({"name": "x", "dropout": "high"}, "Outer.dropout: expected a number"),
        ({"name": "x", "layers": [{"units": "many"}]}, "Outer.layers[0].units: expected an integer"),
        ({"name": "x", "layers": [{"bidirectional": 1}]}, "expected true or false"),
        ({"name": "x", "dropout": 1.5}, "dropout must be in"),
        ({}, "name"),
    ],
)
def test_errors_name_the_field(body, message):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, body)
    assert message in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "none.yaml")


def test_configs_are_frozen():
    config = Outer("m")
    with pytest.raises(AttributeError):
        config.name = "n"
