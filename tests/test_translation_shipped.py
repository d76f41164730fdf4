"""The Translator service on the shipped translation packages."""

import re

import numpy as np
import pytest

from nlpcore.packages import find_package, verify_package
from nlpcore.services import TranslateOptions
from nlpcore.translation import Translator

DIRECTIONS = [("en", "fr"), ("fr", "en"), ("ko", "en"), ("en", "ko")]
HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def translator():
    return Translator.load()


def test_four_directions_ship_with_complete_cards(translator):
    assert set(DIRECTIONS) <= set(translator.directions)
    for src, tgt in DIRECTIONS:
        card = verify_package(find_package(f"translate-{src}-{tgt}"))
        (split, metrics), = card.metrics.items()
        assert "validation" in split and metrics["bleu"] > 0 and metrics["chrf"] > 0
        assert card.license and card.data and card.extra["weights_dtype"] == "float16"
        assert sum(f.size for f in card.files.values()) < 30_000_000


@pytest.mark.parametrize("src, tgt, text, expected", [
    ("en", "fr", "I love you.", "aime"),
    ("ko", "en", "나는 너를 사랑해.", "love"),
    ("fr", "en", "Je t'aime.", "love"),
])
def test_known_sentences(translator, src, tgt, text, expected):
    assert expected in translator.translate(text, src, tgt).text.lower()


def test_invisible_characters_do_not_change_a_translation(translator):
    """A byte-order mark (the first line of a file saved on Windows), zero-width
    spaces and direction marks (text copied from the web) show nothing; the
    translation is that of the visible text."""
    plain = translator.translate("I love you. Where is the station?", "en", "fr")
    marked = translator.translate("\ufeffI love\u200b you.\u200e Where is the\u00ad station?", "en", "fr")
    assert [(h.text, h.score) for h in marked.hypotheses] == [(h.text, h.score) for h in plain.hypotheses]
    assert translator.translate("\ufeff\u200b", "en", "fr").text == ""


def test_chat_style_input_reads_as_the_sentence_it_means(translator):
    """Lower case, no full stop, capitals: the shipped models learnt from
    sentences written the usual way, and read these as such sentences."""
    written = translator.translate("I love you.", "en", "fr").text
    assert written.endswith(".") and "aime" in written
    assert translator.translate("i love you", "en", "fr").text == written[:-1]
    assert translator.translate("I LOVE YOU.", "en", "fr").text == written.upper()
    assert translator.translate("je t'aime", "fr", "en").text == translator.translate("Je t'aime.", "fr", "en").text[:-1]


def test_numbers_come_through_as_written(translator):
    for text, number in [("It costs 1,250 dollars.", "1,250"), ("Call me at 555-1234.", "1234"),
                         ("Room 404 is on the 4th floor.", "404")]:
        assert number in translator.translate(text, "en", "fr").text
    assert "5678" in translator.translate("내 전화번호는 010-1234-5678이야.", "ko", "en").text


def test_list_markers_addresses_and_emoji_are_kept(translator):
    out = translator.translate("1. I love you. 😀\n2. Thank you: https://example.com/thanks?x=1", "en", "fr").text
    first, second = out.split("\n")
    assert first.startswith("1. ") and "aime" in first and first.endswith("😀")
    assert second.startswith("2. ") and second.endswith(" https://example.com/thanks?x=1")


def test_english_to_korean_writes_hangul(translator):
    out = translator.translate("I love you.", "en", "ko").text
    assert len(HANGUL.findall(out)) >= 2 and not re.search(r"[A-Za-z]{3,}", out)


def test_n_best_and_attention_on_a_real_model(translator):
    result = translator.translate("The cat is sleeping on the bed.", "en", "fr", TranslateOptions(beam_size=5, n_best=3))
    assert len(result.hypotheses) == 3
    scores = [h.score for h in result.hypotheses]
    assert scores == sorted(scores, reverse=True) and len({h.text for h in result.hypotheses}) >= 2
    best = result.hypotheses[0]
    assert best.attention.shape == (len(best.pieces), len(result.source_pieces))
    np.testing.assert_allclose(best.attention.sum(1), 1.0, atol=1e-4)
    # attention moves along the source: the most attended source position is not the same for every target piece
    assert len(set(best.attention.argmax(1).tolist())) >= 3


def test_paragraphs_keep_their_layout(translator):
    out = translator.translate("I am hungry. Where is the station?\n\nThank you.", "en", "fr").text
    assert out.count("\n\n") == 1 and all(part.strip() for part in out.split("\n\n"))


@pytest.mark.parametrize("src, tgt", DIRECTIONS)
def test_the_length_penalty_is_the_packages_unless_the_options_name_one(translator, src, tgt):
    """Options without a length penalty search with the one the package was tuned and scored with."""
    from nlpcore.packages import load_package
    from nlpcore.train.translation import TranslationTrainConfig

    model = translator.model(src, tgt)
    package = load_package(find_package(f"translate-{src}-{tgt}"))
    tuned = package.config(TranslationTrainConfig).length_penalty
    # the card says how its figures were decoded: the package's penalty and the service's beam stopping
    assert package.card.extra["decoding"]["length_penalty"] == tuned
    assert package.card.extra["decoding"]["stopping"] == TranslateOptions().stopping
    assert model.alpha(TranslateOptions()) == tuned and model.alpha(TranslateOptions(length_penalty=0)) == 0
    text = {"en": "The weather was nice, so we walked to the station.", "fr": "Il fait beau aujourd'hui.",
            "ko": "오늘은 날씨가 좋아서 역까지 걸어갔다."}[src]
    default, same, raw = (translator.translate(text, src, tgt, TranslateOptions(length_penalty=alpha, channel_weight=0))
                          for alpha in (None, tuned, 0.0))
    best = [t.hypotheses[0] for t in (default, same, raw)]
    assert (best[0].text, best[0].score) == (best[1].text, best[1].score)
    assert best[2].score < best[0].score  # a summed log-probability, not divided by a length penalty > 1
    with pytest.raises(ValueError, match="length_penalty"):
        TranslateOptions(length_penalty=-1)


def test_bulk_decoding_may_use_every_core_and_finds_the_same(translator, monkeypatch):
    """More sentences than one batch run with ``bulk_threads``, one batch with ``threads``."""
    import nlpcore.translation as translation

    model = translator.model("fr", "en")
    settings, real = [], translation.blas_threads
    monkeypatch.setattr(translation, "blas_threads", lambda count: settings.append(count) or real(count))
    ids = model.source_tokenizer.encode("Il fait beau aujourd'hui.")
    one = model.search([ids], batch_size=2)
    bulk = model.search([ids] * 3, batch_size=2)
    assert settings == [model.threads, model.bulk_threads] and model.threads == 1
    assert all(h[0].ids == one[0][0].ids and abs(h[0].score - one[0][0].score) < 1e-6 for h in bulk)


@pytest.mark.parametrize("src, tgt", [("ko", "en"), ("en", "ko")])
def test_korean_directions_rerank_with_the_reverse_model_when_asked(src, tgt, monkeypatch):
    """The Korean packages name the reverse package but leave its weight at 0: it
    loads the first time a search reranks. Each hypothesis' score then gains the
    weight times log P(source | hypothesis) under it, as its Keras model computes
    it; long sources are left alone."""
    from nlpcore.packages import load_package
    from nlpcore.train.translation import TranslationTrainConfig
    from nlpcore.translation import TranslationModel, keras_log_prob

    loads, real = [], TranslationModel.load_channel.__func__
    monkeypatch.setattr(TranslationModel, "load_channel",
                        classmethod(lambda cls, name: loads.append(name) or real(cls, name)))
    package = load_package(find_package(f"translate-{src}-{tgt}"))
    config = package.config(TranslationTrainConfig)
    assert config.channel_model == f"translate-{tgt}-{src}" and config.channel_weight == 0
    assert package.card.extra["decoding"]["channel_weight"] == 0
    assert package.card.extra["decoding"]["channel_check"]["channel_seen_pairs"] > 0  # why it is off
    model = TranslationModel.from_package(package)
    text = {"ko": "그는 매일 아침 공원에서 달린다.", "en": "He runs in the park every morning."}[src]
    ids = model.source_tokenizer.encode(text)
    plain = model.search([ids], TranslateOptions(n_best=5))[0]
    assert loads == [] and model.reranking_weight(TranslateOptions()) == 0  # not loaded for a plain search
    weight = 1.0
    asked = TranslateOptions(n_best=5, channel_weight=weight)
    assert model.reranking_weight(asked) == weight and loads == [config.channel_model]
    assert model.reranking_weight(TranslateOptions(beam_size=1, channel_weight=weight)) == 0
    assert len(ids) <= model.channel_max_source
    reranked = model.search([ids], asked)[0]
    assert loads == [config.channel_model]  # once
    assert len(reranked) == min(len(plain), model.candidates(asked)) >= 2
    assert model.search([ids], TranslateOptions(channel_weight=weight))[0][0] == reranked[0]  # whatever n_best
    channel = model.channel
    by_ids = {h.ids: h.score for h in plain}
    hypothesis_ids = [channel.source_tokenizer.encode(model.target_tokenizer.decode(list(h.ids))) for h in reranked]
    expected = keras_log_prob(channel.keras_model, hypothesis_ids,
                              [channel.target_tokenizer.encode(model.source_tokenizer.decode(ids))] * len(reranked))
    np.testing.assert_allclose([h.score - by_ids[h.ids] for h in reranked], weight * expected, atol=1e-3)
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    long_ids = ids * (model.channel_max_source // len(ids) + 1)  # kept as searched: same order, same scores
    kept = model.search([long_ids, ids], TranslateOptions(n_best=3, channel_weight=weight))[0]  # batched together
    searched = model.search([long_ids], TranslateOptions(n_best=3))[0]
    assert [h.ids for h in kept] == [h.ids for h in searched]
    np.testing.assert_allclose([h.score for h in kept], [h.score for h in searched], rtol=1e-5)


def test_french_directions_have_no_channel_and_a_missing_one_is_a_warning(translator):
    from nlpcore.translation import TranslationModel

    assert translator.model("en", "fr").channel is None
    assert translator.model("en", "fr").reranking_weight(TranslateOptions(channel_weight=1.0)) == 0
    with pytest.warns(RuntimeWarning, match="without reranking"):
        assert TranslationModel.load_channel("translate-xx-yy") is None
    with pytest.raises(ValueError, match="channel_weight"):
        TranslateOptions(channel_weight=-0.5)


def test_one_direction_loads_its_package_alone_and_a_missing_one_names_those_installed():
    from nlpcore.packages import PackageError

    translator = Translator.for_direction("fr", "en")
    assert translator.models == ["translate-fr-en"]
    assert "love" in translator.translate("Je t'aime.", "fr", "en").text.lower()
    with pytest.raises(PackageError, match=r"no translation model for fr→ko is installed \(installed: .*en→fr"):
        Translator.for_direction("fr", "ko")
