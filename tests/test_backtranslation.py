"""Back-translation: monolingual sentences in, a training table out (with the shipped ko→en model)."""

import csv
import dataclasses
import gzip
import io
import json
import subprocess
import sys

import pytest

from nlpcore.train import backtranslation

CHAT = [
    ("12시 땡!", "하루가 또 가네요.", 0),
    ("오늘 날씨가 좋아요. 산책 갈까요?", "좋은 생각이에요.", 0),
    ("하루가 또 가네요.", "네", 0),  # a repeat, and a one-character answer
    ("사랑해", "저도 사랑해요.", 2),
]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data folder whose chatbot corpus is the four rows above."""
    (tmp_path / "chat").mkdir()
    with gzip.open(tmp_path / "chat" / "ko_chatbot.tsv.gz", "wt", encoding="utf-8") as handle:
        handle.write("question\tanswer\tlabel\n" + "".join(f"{q}\t{a}\t{l}\n" for q, a, l in CHAT))
    monkeypatch.setenv("MALBEOT_DATA", str(tmp_path))
    return tmp_path


def test_monolingual_sentences_are_split_distinct_and_drawn(data_dir):
    sentences = backtranslation.monolingual_sentences("ko_chatbot")
    assert sentences == ["12시 땡!", "하루가 또 가네요.", "오늘 날씨가 좋아요.", "산책 갈까요?", "좋은 생각이에요.",
                         "사랑해", "저도 사랑해요."]  # split at sentence ends, no repeat, "네" too short
    drawn = backtranslation.monolingual_sentences("ko_chatbot", limit=3)
    assert len(drawn) == 3 and set(drawn) <= set(sentences)
    assert drawn == backtranslation.monolingual_sentences("ko_chatbot", limit=3)  # seeded


def test_movie_reviews_lose_laughter_and_repeated_punctuation(tmp_path, monkeypatch):
    (tmp_path / "sentiment").mkdir()
    reviews = ["최고의 영화ㅋㅋㅋ 또 보고 싶다...", "ㅠㅠ", "별로.. 지루했어요!!", "재밌음", "별로.. 정말 지루했어요"]
    with gzip.open(tmp_path / "sentiment" / "nsmc_train.tsv.gz", "wt", encoding="utf-8") as handle:
        handle.write("id\ttext\tlabel\n" + "".join(f"{i}\t{text}\t1\n" for i, text in enumerate(reviews)))
    monkeypatch.setenv("MALBEOT_DATA", str(tmp_path))
    # bare jamo and runs of punctuation go, a review of under six syllables is left out,
    # and a sentence met before is not repeated
    assert backtranslation.monolingual_sentences("nsmc") == ["최고의 영화 또 보고 싶다.", "별로.", "지루했어요!",
                                                             "정말 지루했어요"]


def test_back_translation_writes_a_table_that_trains_en_to_ko(data_dir, tmp_path):
    from nlpcore.packages import find_package
    from nlpcore.tokenizer import UNK_ID, Tokenizer
    from nlpcore.train.translation import TranslationTrainConfig, extra_records, load_pairs

    table = tmp_path / "bt" / "chat.tsv"
    progress = io.StringIO()
    record = backtranslation.back_translate("translate-ko-en", "ko_chatbot", table, beam_size=2, progress=progress)
    assert progress.getvalue() == "7/7 sentences\n"
    with open(table, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["ko"] for r in rows] == backtranslation.monolingual_sentences("ko_chatbot")
    assert all(r["en"] and r["source"] == "ko_chatbot-bt" and r["license"] == "MIT" for r in rows)
    assert "love" in next(r["en"] for r in rows if r["ko"] == "저도 사랑해요.").lower()
    assert json.loads(table.with_suffix(".json").read_text()) == record
    assert record["model"] == "translate-ko-en" and record["pairs"] == len(rows) == record["sentences"]
    assert not list(table.parent.glob("*.part"))

    # As extra training pairs of en→ko: a pair whose Korean is a validation reference stays out.
    corpus = tmp_path / "ko-en.tsv"
    corpus.write_text("ko\ten\tsource\tlicense\n사랑해\tI love you.\ttatoeba\tCC-BY-2.0-FR\n", encoding="utf-8")
    config = TranslationTrainConfig(source="en", target="ko", corpus=str(corpus), validation_fraction=1.0,
                                    extra_corpora=(str(table),))
    train, validation, used = load_pairs(config)
    assert [p.target for p in validation] == ["사랑해"]
    assert sorted(p.target for p in train) == sorted(r["ko"] for r in rows if r["ko"] != "사랑해")
    assert used == {("ko_chatbot-bt", "MIT"): len(rows) - 1}
    # Tagged back-translation: the same pairs, each machine-made source after the tag;
    # the validation split is untouched, and the tag is pieces of its own, not <unk>.
    tagged_config = dataclasses.replace(config, tag_extra_corpora=True)
    tagged, tagged_validation, _ = load_pairs(tagged_config)
    assert extra_records(tagged_config)[0]["tagged"] and "tagged" not in extra_records(config)[0]
    assert tagged_validation == validation
    assert [p.source for p in tagged] == [backtranslation.tagged(p.source) for p in train]
    assert [p.target for p in tagged] == [p.target for p in train]
    source = Tokenizer.load(find_package("translate-en-ko") / "source.model")
    tag_pieces = source.encode(backtranslation.tagged("I love you."))[:-len(source.encode("I love you."))]
    assert tag_pieces and UNK_ID not in tag_pieces
    assert source.decode(source.encode(backtranslation.TAG)) == backtranslation.TAG
    table.unlink()  # the validation split needs no extra corpus: a package's config names tables of its machine
    assert load_pairs(config, extras=False)[1] == validation
    with pytest.raises(ValueError, match="chat.tsv"):
        load_pairs(config)


def test_a_table_without_licenses_is_refused(tmp_path):
    from nlpcore.data import CorpusError
    from nlpcore.train.translation import TranslationTrainConfig, load_pairs

    corpus, extra = tmp_path / "ko-en.tsv", tmp_path / "extra.tsv"
    corpus.write_text("ko\ten\n사랑해\tI love you.\n", encoding="utf-8")
    extra.write_text("ko\ten\n좋아\tGood.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="license"):
        load_pairs(TranslationTrainConfig(source="en", target="ko", corpus=str(corpus), extra_corpora=(str(extra),)))


def test_cli_refuses_a_model_of_the_wrong_language(data_dir, tmp_path):
    done = subprocess.run([sys.executable, "-m", "nlpcore", "backtranslate", "--model", "translate-en-ko",
                           "--corpus", "ko_chatbot", "--output", str(tmp_path / "bt.tsv")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "translates from en, but ko_chatbot is in ko" in done.stderr
    assert not (tmp_path / "bt.tsv").exists()
