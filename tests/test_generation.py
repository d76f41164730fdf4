"""The Generator service: streaming whole characters, stop strings, cancel, seeds; CLI functions.

Most tests drive a scripted model (the logits favour a fixed id sequence), so
they check the streaming logic exactly; a few use a tiny random-weight LSTM.
"""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpcore.generation import Detokenizer, Utf8Guard, _piece_bytes, Generator, LanguageModelRunner, encode_exact, options_from_args
from nlpcore.services import CancelFlag, GenerateOptions, GeneratedPiece
from nlpcore.tokenizer import BOS_ID, EOS_ID

GREEDY = dict(sampler="greedy", repetition_penalty=1.0)


class ScriptedModel:
    """Stands in for NumpyLanguageModel: after the prompt, the n-th step strongly
    prefers ``script[n]`` (then ``</s>``). Counts its step calls."""

    def __init__(self, script, vocab_size):
        self.script = list(script)
        self.vocab_size = vocab_size
        self.steps = 0
        self.prompts = []

    def initial_state(self, rows=1):
        return {"n": np.zeros(rows, np.int64)}

    def _logits(self, n):
        logits = np.zeros((1, self.vocab_size), np.float32)
        logits[0, self.script[n] if n < len(self.script) else EOS_ID] = 20.0
        return logits

    def forward(self, ids, state=None, last_only=False):
        self.prompts.append(np.asarray(ids)[0].tolist())
        return self._logits(0), {"n": np.zeros(1, np.int64)}

    def step(self, ids, state):
        self.steps += 1
        n = int(state["n"][0]) + 1
        return self._logits(n), {"n": np.array([n])}, None


def scripted(tokenizer, text, prompt_pieces=True):
    """A runner whose greedy continuation is ``text``, encoded as the tokenizer encodes it."""
    ids = tokenizer.encode(text)
    return LanguageModelRunner(ScriptedModel(ids, tokenizer.vocab_size), tokenizer, name="generate-test")


def byte_script(tokenizer, text):
    """A runner that writes ``text`` one UTF-8 byte piece at a time (as a byte-fallback model can)."""
    ids = [tokenizer.piece_to_id(f"<0x{b:02X}>") for b in text.encode("utf-8")]
    return LanguageModelRunner(ScriptedModel(ids, tokenizer.vocab_size), tokenizer, name="generate-test")


def collect(stream):
    pieces = []
    while True:
        try:
            pieces.append(next(stream))
        except StopIteration as end:
            return pieces, end.value


def assert_whole(pieces, valid=True):
    """Each piece is non-empty text; with ``valid``, no U+FFFD either (a random model may
    draw byte pieces that form no UTF-8 character: those become one U+FFFD each)."""
    for piece in pieces:
        assert isinstance(piece, GeneratedPiece) and piece.text
        assert not valid or "\ufffd" not in piece.text
        piece.text.encode("utf-8")  # no lone surrogates
        assert len(piece.token_ids) == len(piece.probabilities)
        assert all(0.0 < p <= 1.0 for p in piece.probabilities)


# ------------------------------------------------------------------ whole characters
@pytest.mark.parametrize("text", ["뷁 괄호 👩‍👩‍👧 끝", "naïve café 😀👍 ok", "日本語のテキスト"])
def test_byte_pieces_are_held_until_a_character_is_whole(tiny_tokenizer, text):
    runner = byte_script(tiny_tokenizer, text)
    pieces, reason = collect(runner.stream("", GenerateOptions(max_new_tokens=200, **GREEDY)))
    assert reason == "eos"
    assert_whole(pieces)
    assert "".join(p.text for p in pieces) == text
    assert sum(len(p.token_ids) for p in pieces) == len(text.encode("utf-8"))
    assert len(pieces[0].token_ids) == len(text[0].encode("utf-8"))  # the first character as soon as it is whole
    # Every Hangul syllable and emoji comes out in one piece with all its bytes.
    assert all(len(p.text.encode("utf-8")) == len(p.token_ids) for p in pieces)


def test_a_joiner_waits_for_the_character_it_joins(tiny_tokenizer):
    runner = byte_script(tiny_tokenizer, "👩\u200d👧")
    pieces, _ = collect(runner.stream("", GenerateOptions(max_new_tokens=50, **GREEDY)))
    assert [p.text for p in pieces] == ["👩", "\u200d👧"]


def test_byte_pieces_that_would_break_utf8_are_never_drawn(tiny_tokenizer):
    byte = lambda value: tiny_tokenizer.piece_to_id(f"<0x{value:02X}>")  # noqa: E731
    # The model wants: a stray continuation byte, a lead byte followed by "a", then a lone lead byte.
    script = [byte(0x80), byte(0xEA), tiny_tokenizer.piece_to_id("a"), byte(0xB0), byte(0x80), byte(0xEB)]
    runner = LanguageModelRunner(ScriptedModel(script, tiny_tokenizer.vocab_size), tiny_tokenizer)
    pieces, reason = collect(runner.stream("", GenerateOptions(max_new_tokens=6, **GREEDY)))
    assert reason == "length"
    assert_whole(pieces)
    text = "".join(p.text for p in pieces)
    text.encode("utf-8")
    ids = [i for p in pieces for i in p.token_ids]
    assert ids[0] != byte(0x80)  # no character starts with a continuation byte
    assert 0x80 <= int(tiny_tokenizer.id_to_piece(ids[2])[3:5], 16) <= 0xBF  # after 0xEA: continuation only
    assert "\ufffd" not in text  # the lead byte cut off by the length limit is dropped, not shown as U+FFFD


def test_detokenizer_matches_sentencepiece_decoding(tiny_tokenizer):
    text = "오늘 날씨가 좋네요. I love you 😀 뷁!"
    ids = tiny_tokenizer.encode(text)
    detokenizer = Detokenizer(tiny_tokenizer, at_start=True)
    assert "".join(detokenizer.feed(i) for i in ids) + detokenizer.flush() == tiny_tokenizer.decode(ids) == text
    for spaced in ("  two leading spaces", " one", "trailing  "):  # byte-piece spaces are real spaces
        ids = encode_exact(tiny_tokenizer, spaced)
        detokenizer = Detokenizer(tiny_tokenizer, at_start=True)
        assert "".join(detokenizer.feed(i) for i in ids) + detokenizer.flush() == spaced
    # Continuing a text, the first piece's ▁ is a real space.
    continuing = Detokenizer(tiny_tokenizer)
    assert "".join(continuing.feed(i) for i in tiny_tokenizer.encode("love")) == " love"
    # An unfinished byte sequence at the end becomes U+FFFD, not an exception.
    broken = Detokenizer(tiny_tokenizer)
    assert broken.feed(tiny_tokenizer.piece_to_id("<0xEA>")) == "" and broken.flush() == "\ufffd"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 가나\n😀é.")), max_size=30))
def test_encode_exact_round_trips_any_spacing(tiny_tokenizer, text):
    from nlpcore.tokenizer import normalize

    ids = encode_exact(tiny_tokenizer, text)
    assert tiny_tokenizer.decode(ids) == normalize(text)


def test_encode_exact_keeps_the_usual_encoding_when_it_round_trips(tiny_tokenizer):
    text = "I love you. 나는 너를 사랑해."
    assert encode_exact(tiny_tokenizer, text) == tiny_tokenizer.encode(text)
    spaced = encode_exact(tiny_tokenizer, "  I  love ")
    assert tiny_tokenizer.decode(spaced) == "  I  love "


# ------------------------------------------------------------------ stopping
def test_max_new_tokens(tiny_tokenizer):
    runner = scripted(tiny_tokenizer, "I love you. This movie was a wonderful surprise.")
    pieces, reason = collect(runner.stream("", GenerateOptions(max_new_tokens=3, **GREEDY)))
    assert reason == "length"
    assert sum(len(p.token_ids) for p in pieces) == 3
    assert runner.model.steps == 2  # the first token comes from the prompt pass


def test_stop_string_across_pieces_is_not_yielded(tiny_tokenizer):
    runner = scripted(tiny_tokenizer, "I love you. The plot was boring and the ending was the worst.")
    options = GenerateOptions(max_new_tokens=100, stop=("was boring",), **GREEDY)
    pieces, reason = collect(runner.stream("", options))
    assert reason == "stop"
    assert "".join(p.text for p in pieces) == "I love you. The plot "
    for piece in pieces:  # nothing of the stop string was shown, even partly
        assert "was" not in piece.text


def test_stop_string_prefix_that_does_not_complete_is_released(tiny_tokenizer):
    runner = scripted(tiny_tokenizer, "I love you.")
    pieces, reason = collect(runner.stream("", GenerateOptions(max_new_tokens=100, stop=("you!",), **GREEDY)))
    assert reason == "eos" and "".join(p.text for p in pieces) == "I love you."


def test_cancel_stops_between_steps(tiny_tokenizer):
    runner = scripted(tiny_tokenizer, "I love you. This movie was a wonderful surprise, the actors were great.")
    cancel = CancelFlag()
    stream = runner.stream("", GenerateOptions(max_new_tokens=100, **GREEDY), cancel)
    first = next(stream)
    steps = runner.model.steps
    cancel.set()
    rest, reason = collect(stream)
    assert reason == "cancelled" and first.text
    assert runner.model.steps == steps  # no model step after the flag was set
    assert len(rest) <= 1  # at most the text already decoded


def test_cancel_from_another_thread(tiny_tokenizer):
    runner = scripted(tiny_tokenizer, "I love you. " * 50)
    cancel = CancelFlag()
    seen = []
    for piece in runner.stream("", GenerateOptions(max_new_tokens=1000, **GREEDY), cancel):
        seen.append(piece)
        if len(seen) == 2:
            threading.Thread(target=cancel.set).start()
            threading.Event().wait(0.05)
    assert len(seen) < 10


# ------------------------------------------------------------------ prompts
def test_prompt_is_read_in_one_pass_and_healed(tiny_tokenizer):
    runner = scripted(tiny_tokenizer, "I love you.")
    ids, allowed, repeat, at_start = runner.prepare_prompt("I love")
    body = tiny_tokenizer.encode("I love")
    assert ids == [BOS_ID, *body[:-1]] and not at_start
    assert repeat == "I love"[len(tiny_tokenizer.decode(body[:-1])):]
    surface = _piece_bytes(tiny_tokenizer)  # what each piece writes, byte pieces included
    allowed_pieces = [surface[i] for i in np.flatnonzero(allowed)]
    assert surface[body[-1]] in allowed_pieces and all(p.startswith(surface[body[-1]]) for p in allowed_pieces)
    # Streaming: the model saw the prompt once, and the repeated text is not yielded again.
    whole = tiny_tokenizer.encode("I love you.")
    assert whole[: len(body) - 1] == body[:-1]
    model = ScriptedModel(whole[len(body) - 1 :], tiny_tokenizer.vocab_size)  # starts by writing the healed piece
    runner = LanguageModelRunner(model, tiny_tokenizer)
    text = "".join(p.text for p in runner.stream("I love", GenerateOptions(max_new_tokens=20, **GREEDY)))
    assert model.prompts == [ids]
    assert text == " you."


def test_prompt_ending_in_a_space_does_not_double_it(tiny_tokenizer):
    model = ScriptedModel(tiny_tokenizer.encode("I love you."), tiny_tokenizer.vocab_size)
    runner = LanguageModelRunner(model, tiny_tokenizer)
    ids, allowed, _, _ = runner.prepare_prompt("The plot ")
    assert allowed is None and ids == [BOS_ID, *tiny_tokenizer.encode("The plot")]
    text = "".join(p.text for p in runner.stream("The plot ", GenerateOptions(max_new_tokens=20, **GREEDY)))
    assert text == "I love you."


# ------------------------------------------------------------------ a real (tiny, random) LSTM
@pytest.fixture(scope="module")
def random_package(tmp_path_factory, tiny_tokenizer):
    import keras

    from nlpcore.models.language_model import LanguageModelConfig, build_language_model
    from nlpcore.packages import ModelCard, write_package
    from nlpcore.train.lm import LMTrainConfig

    keras.utils.set_random_seed(7)
    config = LMTrainConfig(name="generate-test", model=LanguageModelConfig(
        vocab_size=tiny_tokenizer.vocab_size, embedding_dim=16, units=16, layers=2))
    model = build_language_model(config.model)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    card = ModelCard(name="generate-test", task="generation", languages=("en",))
    folder = tmp_path_factory.mktemp("models") / "generate-test"
    return write_package(folder, card, config, {"model": model}, {"tokenizer": tiny_tokenizer})


def test_same_seed_same_text(random_package):
    service = Generator.load([str(random_package.path)])
    assert service.models == ["generate-test"]
    options = GenerateOptions(max_new_tokens=40, sampler="top_p", top_p=0.95, temperature=1.0, seed=3)
    first, reason = collect(service.stream("I love", "generate-test", options))
    second, _ = collect(service.stream("I love", "generate-test", options))
    assert [p.text for p in first] == [p.text for p in second] and reason in ("length", "eos")
    assert [p.probabilities for p in first] == [p.probabilities for p in second]
    others = {service.generate("I love", "generate-test", GenerateOptions(max_new_tokens=40, seed=s, temperature=1.0))
              for s in range(4)}
    assert len(others) > 1
    assert_whole(first)  # even a random model writes no broken character


@pytest.mark.parametrize("sampler", ["greedy", "temperature", "top_k", "top_p"])
def test_every_sampler_streams(random_package, sampler):
    service = Generator.load([str(random_package.path)])
    options = GenerateOptions(max_new_tokens=15, sampler=sampler, top_k=5, seed=1, repetition_penalty=1.3)
    pieces, reason = collect(service.stream("오늘 날씨가", "auto", options))
    assert_whole(pieces)
    assert sum(len(p.token_ids) for p in pieces) <= 15 and reason in ("length", "eos")
    if sampler == "greedy":
        assert service.generate("오늘 날씨가", "auto", options) == "".join(p.text for p in pieces)


def test_generator_matches_the_keras_model(random_package):
    """The NumPy path samples from the Keras model's distribution (greedy: its argmax among
    the pieces that keep the text well-formed)."""
    service = Generator.load([str(random_package.path)])
    runner = service.runner("generate-test")
    ids, allowed, _, _ = runner.prepare_prompt("I love you")
    pieces, _ = collect(service.stream("I love you", "generate-test", GenerateOptions(max_new_tokens=8, **GREEDY)))
    generated = [i for p in pieces for i in p.token_ids]
    sequence = list(ids)
    guard = Utf8Guard(runner._table, runner._byte_ids)
    for position, token in enumerate(generated):
        logits = np.array(runner.keras_model(np.asarray([sequence], np.int32)))[0, -1]
        if position == 0:
            logits = np.where(allowed, logits, -np.inf)
        logits = np.array(guard.mask(logits[None]))[0]
        logits[[0, BOS_ID]] = -np.inf
        assert token == int(np.argmax(logits))
        guard.update(token)
        sequence.append(token)


def test_load_finds_installed_generation_packages(random_package, monkeypatch, tmp_path):
    from nlpcore.packages import PackageError, install_package

    with pytest.raises(PackageError, match="no language model"):
        Generator.load(["generate-nothing"])
    install_package(random_package.path)
    monkeypatch.setenv("MALBEOT_ASSETS", str(tmp_path / "no-assets"))
    assert Generator.load().models == ["generate-test"]


# ------------------------------------------------------------------ CLI functions
def generate_args(**values):
    defaults = dict(model="generate-test", prompt="I love", max_tokens=12, temperature=0.8, top_k=0, top_p=1.0,
                    seed=1, json=False)
    defaults.update(values)
    return argparse.Namespace(**defaults)


def test_cli_generate_prints_prompt_and_continuation(random_package, capsys):
    from nlpcore.generation import cli_generate

    assert cli_generate(generate_args(model=str(random_package.path))) == 0
    plain = capsys.readouterr().out
    assert plain.startswith("I love") and plain.endswith("\n")
    assert cli_generate(generate_args(model=str(random_package.path), json=True)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    done = lines[-1]
    assert done["done"] in ("length", "eos") and done["model"] == "generate-test"
    assert done["text"] == "".join(line["text"] for line in lines[:-1])
    assert plain == "I love" + done["text"] + "\n"  # same seed, same text
    assert all(len(line["token_ids"]) == len(line["probabilities"]) for line in lines[:-1])


def test_cli_generate_reports_a_missing_model(capsys):
    from nlpcore.generation import cli_generate

    assert cli_generate(generate_args(model="generate-xx")) == 1
    assert "generate-xx" in capsys.readouterr().err


def test_options_from_cli_flags():
    assert options_from_args(generate_args(temperature=0.0)).sampler == "greedy"
    assert options_from_args(generate_args(top_k=20)).sampler == "top_k"
    assert options_from_args(generate_args(top_p=0.9)).sampler == "top_p"
    plain = options_from_args(generate_args())
    default = GenerateOptions().repetition_penalty
    assert (plain.sampler, plain.repetition_penalty, plain.max_new_tokens, plain.seed) == ("temperature", default, 12, 1)
    from nlpcore.cli import build_parser

    parsed = build_parser().parse_args(["generate", "--prompt", "x"])
    assert options_from_args(parsed).repetition_penalty == default  # the command line agrees with the service
    chosen = options_from_args(generate_args(sampler="top_p", repetition_penalty=1.2, stop=["\n\n"]))
    assert (chosen.sampler, chosen.repetition_penalty, chosen.stop) == ("top_p", 1.2, ("\n\n",))


def test_cli_score_prints_the_contract(random_package, tmp_path, capsys):
    from nlpcore.generation import cli_score
    from nlpcore.train.lm import score_text

    text = "I love you.\n오늘 날씨가 좋네요.\n"
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    assert cli_score(argparse.Namespace(model=str(random_package.path), file=str(path), json=False)) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"nats_per_char", "chars", "tokens"}
    assert record["chars"] == len(text)
    assert record["nats_per_char"] == pytest.approx(score_text(random_package, text)["nats_per_char"], abs=1e-6)

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe broken")
    assert cli_score(argparse.Namespace(model=str(random_package.path), file=str(bad), json=True)) == 1
    assert "UTF-8" in capsys.readouterr().err
    assert cli_score(argparse.Namespace(model=str(random_package.path), file=str(tmp_path / "none"), json=True)) == 1


# ------------------------------------------------------------------ the shipped models
SHIPPED = {
    "generate-en": ("ROMEO:", "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\nDeny thy father and refuse thy name;\n"),
    "generate-ko": ("그는 조용히", "비가 내리던 밤, 그는 조용히 문을 열고 마당으로 나갔다.\n어머니는 아무 말도 하지 않았다.\n"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_writes_and_scores_its_language(name):
    from nlpcore.packages import PackageError, find_package, read_card

    try:
        card = read_card(find_package(name))
    except PackageError:
        pytest.skip(f"{name} is not installed")
    (split, metrics), = card.metrics.items()
    assert split.startswith("validation") and 0 < metrics["nats_per_char"] < 5
    assert card.extra["samples"] and all(s["continuation"] for s in card.extra["samples"])
    service = Generator.load([name])
    prompt, text = SHIPPED[name]
    options = GenerateOptions(max_new_tokens=60, sampler="top_p", top_p=0.9, temperature=0.8, seed=1)
    pieces, reason = collect(service.stream(prompt, name, options))
    assert_whole(pieces)
    assert reason in ("length", "eos") and len("".join(p.text for p in pieces)) > 20
    assert [p.text for p in pieces] == [p.text for p in collect(service.stream(prompt, name, options))[0]]
    scored = service.score(text, name)
    assert scored["chars"] == len(text) and scored["nats_per_char"] < 2 * metrics["nats_per_char"]
