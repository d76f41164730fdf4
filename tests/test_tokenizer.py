import sentencepiece as spm
import io
import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from conftest import sample_corpus
from nlpcore.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    TokenizerConfig,
    TokenizerError,
    normalize,
)

ROUND_TRIP = [
    "나는 너를 사랑해.",
    "스토리가 지루하고 결말이 최악이었다 ㅋㅋㅋ ㅠㅠ",
    "I love you.",
    "Je t'aime. L'été à Paris est très agréable !",
    "Emoji 😀👍🏽🇰🇷 and 한국어 mixed: café, naïve, 2024.",
    "처음 보는 글자: 鬱 ÆØÅ Ωμέγα",  # never seen in training: byte fallback
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text)
    assert UNK_ID not in ids
    assert tiny_tokenizer.decode(ids) == text
    assert tiny_tokenizer.decode_pieces(tiny_tokenizer.encode_pieces(text)) == text


def test_special_ids(tiny_tokenizer):
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tiny_tokenizer.id_to_piece(PAD_ID) == "<pad>"
    assert tiny_tokenizer.piece_to_id("</s>") == EOS_ID
    ids = tiny_tokenizer.encode("I love you.", add_bos=True, add_eos=True)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert tiny_tokenizer.decode([PAD_ID, *ids, PAD_ID]) == "I love you."
    assert all(tiny_tokenizer.is_special(i) for i in (0, 1, 2, 3))


def test_batch_encode_matches_single(tiny_tokenizer):
    batch = tiny_tokenizer.encode(ROUND_TRIP)
    assert batch == [tiny_tokenizer.encode(t) for t in ROUND_TRIP]


def test_nfc_normalisation(tiny_tokenizer):
    decomposed = unicodedata.normalize("NFD", "café 한국어")
    assert decomposed != "café 한국어"
    assert tiny_tokenizer.encode(decomposed) == tiny_tokenizer.encode("café 한국어")


INVISIBLE = ["\ufeff", "\u200b", "\u200e", "\u200f", "\u202a", "\u2066", "\u2060", "\u00ad", "\x00", "\x7f"]


def test_invisible_characters_are_dropped_but_whitespace_and_emoji_joiners_kept():
    assert normalize("\ufeffI love\u200e you.\u00ad") == "I love you."
    assert normalize("나는\u200b 너를\x00 사랑해") == "나는 너를 사랑해"
    assert normalize("a\tb\nc\r\nd\u00a0e") == "a\tb\nc\r\nd\u00a0e"
    family = "👨\u200d👩\u200d👧"
    scotland = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert normalize(family + scotland) == family + scotland
    assert normalize("".join(INVISIBLE)) == ""
    assert normalize("good\x96but") == "good\x96but"  # a Windows-1252 dash read as Latin-1 (C1) stays


@settings(max_examples=300, deadline=None)
@given(st.characters())
def test_the_invisible_characters_are_what_strip_invisible_removes(ch):
    from nlpcore.text import invisible, is_blank, strip_invisible

    assert (strip_invisible(ch) == "") == invisible(ord(ch))
    assert is_blank(ch) == (ch.isspace() or invisible(ord(ch)))
    for mark in INVISIBLE:
        assert invisible(ord(mark)) and strip_invisible(f"a{mark}b") == "ab"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ROUND_TRIP[:5]), st.sampled_from(INVISIBLE), st.integers(0, 60)),
                min_size=1, max_size=4))
def test_invisible_characters_do_not_change_the_encoding(tiny_tokenizer, insertions):
    for text, mark, at in insertions:
        at = min(at, len(text))
        assert tiny_tokenizer.encode(text[:at] + mark + text[at:]) == tiny_tokenizer.encode(text)


def test_load_from_path_and_bytes(tiny_tokenizer, tmp_path):
    path = tiny_tokenizer.save(tmp_path / "tok.model")
    from_path = Tokenizer.load(path)
    from_bytes = Tokenizer.load(path.read_bytes())
    for tok in (from_path, from_bytes):
        assert tok.vocab_size == tiny_tokenizer.vocab_size == 360
        assert tok.encode(ROUND_TRIP[0]) == tiny_tokenizer.encode(ROUND_TRIP[0])


def test_training_is_deterministic(tiny_tokenizer):
    again = Tokenizer.train(sample_corpus(), TokenizerConfig(vocab_size=360, character_coverage=1.0))
    assert again.to_bytes() == tiny_tokenizer.to_bytes()


def test_bpe_and_bad_model_type():
    bpe = Tokenizer.train(sample_corpus(), TokenizerConfig(vocab_size=370, model_type="bpe"))
    assert bpe.decode(bpe.encode("나는 너를 사랑해.")) == "나는 너를 사랑해."
    with pytest.raises(TokenizerError, match="model_type"):
        Tokenizer.train(sample_corpus(), TokenizerConfig(model_type="word"))


def test_sampled_segmentations_vary_and_keep_the_text(tiny_tokenizer):
    """Subword regularization: drawn segmentations differ from seed to seed, each
    decodes to the same text, and the same seed draws the same ones."""
    texts = ROUND_TRIP[:4]
    draws = [tiny_tokenizer.sample(texts, 0.2, seed) for seed in range(6)]
    for ids in draws:
        assert [tiny_tokenizer.decode(i) for i in ids] == texts
    assert len({str(d) for d in draws}) > 1
    assert any(d != tiny_tokenizer.encode(texts) for d in draws)
    assert tiny_tokenizer.sample(texts, 0.2, 3) == draws[3]
    bpe = Tokenizer.train(sample_corpus(), TokenizerConfig(vocab_size=370, model_type="bpe"))
    assert [bpe.decode(i) for i in bpe.sample(texts, 0.3, 1)] == texts  # BPE-dropout
    for alpha in (0.0, -0.1, 1.5):
        with pytest.raises(TokenizerError, match="alpha"):
            tiny_tokenizer.sample(texts, alpha, 0)


def test_impossible_vocab_size_is_a_clear_error():
    with pytest.raises(TokenizerError, match="SentencePiece training failed"):
        Tokenizer.train(["tiny corpus"], TokenizerConfig(vocab_size=50_000))


def test_rejects_garbage_and_foreign_special_ids(tmp_path):
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        Tokenizer.load(b"definitely not a protobuf")
    with pytest.raises(TokenizerError, match="not found"):
        Tokenizer.load(tmp_path / "missing.model")
    buffer = io.BytesIO()  # SentencePiece's defaults: unk 0, bos 1, eos 2, no pad
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample_corpus()), model_writer=buffer, vocab_size=100, minloglevel=2
    )
    with pytest.raises(TokenizerError, match="special ids"):
        Tokenizer.load(buffer.getvalue())


def test_piece_words(tiny_tokenizer):
    text = "나는 너를 사랑해. I love café"
    ids = tiny_tokenizer.encode(text)
    words = tiny_tokenizer.piece_words(ids)
    assert words[0] == 0 and words == sorted(words)
    assert max(words) + 1 == len(text.split())
    pieces = [tiny_tokenizer.id_to_piece(i) for i in ids]
    for w, word in enumerate(text.split()):
        merged = tiny_tokenizer.decode([i for i, k in zip(ids, words) if k == w])
        assert merged == word, (pieces, words)


WORD = st.text(
    alphabet=st.characters(
        categories=("L", "N", "P", "S"), exclude_characters="\u2581"
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(WORD, min_size=1, max_size=6))
def test_round_trip_property(tiny_tokenizer, words):
    text = unicodedata.normalize("NFC", " ".join(words))
    assert tiny_tokenizer.decode(tiny_tokenizer.encode(text)) == text
