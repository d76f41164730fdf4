"""The Sentiment service and CLI on the shipped models."""

import json
import subprocess
import sys

import pytest

from nlpcore.services import Sentiment

CLEAR = [
    ("이 영화 정말 재미있어요. 배우들 연기가 최고였다", "positive", "sentiment-ko"),
    ("인생 영화입니다 꼭 보세요", "positive", "sentiment-ko"),
    ("시간 아깝다 스토리도 엉망이고 너무 지루했다", "negative", "sentiment-ko"),
    ("최악의 영화 돈 아까워요", "negative", "sentiment-ko"),
    ("This movie was wonderful, I loved every minute of it.", "positive", "sentiment-en"),
    ("A beautiful, moving film with brilliant performances.", "positive", "sentiment-en"),
    ("The plot was boring and the acting was terrible.", "negative", "sentiment-en"),
    ("A complete waste of time. Awful.", "negative", "sentiment-en"),
]


@pytest.fixture(scope="module")
def service():
    return Sentiment.load()


def test_both_models_ship(service):
    assert service.models == ["sentiment-ko", "sentiment-en"]


@pytest.mark.parametrize("text, label, model", CLEAR)
def test_clear_sentences(service, text, label, model):
    (result,) = service.predict([text])
    assert (result.label, result.model) == (label, model)
    assert result.score == pytest.approx(result.probabilities["positive"])
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert (result.score > 0.5) == (label == "positive")


def test_contributions_align_with_words(service):
    text = "배우들  연기는 좋았지만 스토리가 최악이었다"
    (result,) = service.predict([text])
    assert [c.word for c in result.contributions] == text.split()
    for c in result.contributions:
        assert text[c.start : c.end] == c.word
    by_word = {c.word: c.score for c in result.contributions}
    assert by_word["최악이었다"] < 0  # the damning word pushes towards negative
    (english,) = service.predict(["The acting was brilliant but the ending was awful."])
    scores = {c.word: c.score for c in english.contributions}
    assert scores["brilliant"] > 0 > scores["awful."]


def test_language_routing_and_errors(service):
    results = service.predict(["", "   ", "좋아요 good", "great movie 최고", "😀👍", "\ufeff \u200b"])
    assert [r.error for r in results[:2]] == ["empty text", "empty text"]
    assert results[5].error == "empty text"  # only invisible characters
    assert results[2].model == "sentiment-ko" and results[2].language == "mixed"
    assert results[3].model == "sentiment-en" and results[3].language == "mixed"
    assert results[4].error is None and results[4].language == "unknown"
    forced = service.predict(["정말 좋아요"], model="sentiment-en")[0]
    assert forced.model == "sentiment-en"
    with pytest.raises(Exception, match="not installed"):
        service.predict(["x"], model="sentiment-fr")


def test_batch_equals_single(service):
    texts = [t for t, _, _ in CLEAR]
    batch = service.predict(texts, explain=False)
    for text, result in zip(texts, batch):
        assert result.score == pytest.approx(service.predict([text], explain=False)[0].score, abs=1e-5)


def test_cli_contract_stdin():
    lines = "정말 재미있어요\n\nThe acting was terrible.\n\xff\n최고\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    result = subprocess.run([sys.executable, "-m", "nlpcore", "sentiment", "--json"], input=lines,
                            capture_output=True, timeout=300, check=True)
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(rows) == 5
    assert rows[0]["label"] == "positive" and rows[0]["model"] == "sentiment-ko" and 0.5 < rows[0]["score"] <= 1
    assert "error" in rows[1] and "error" in rows[3]
    assert rows[2]["label"] == "negative" and rows[2]["model"] == "sentiment-en"
    assert rows[4]["label"] == "positive"


def test_cli_batch_file(tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text('id,text\n1,"정말 재미있어요"\n2,"Terrible, boring film."\n3,""\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    subprocess.run([sys.executable, "-m", "nlpcore", "sentiment", "--input", str(source), "--column", "text",
                    "--output", str(out)], check=True, capture_output=True, timeout=300)
    import csv

    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == ["positive", "negative", ""]
    assert rows[2]["error"] == "empty text" and rows[0]["line"] == "2"
