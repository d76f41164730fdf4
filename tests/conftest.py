"""Shared fixtures. Every test runs with its own empty user-data folder."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from nlpcore.tokenizer import Tokenizer, TokenizerConfig

# A small multilingual corpus for tokenizer fixtures: Korean, English, French,
# emoji and mixed lines, repeated with variations so SentencePiece has counts.
SAMPLE_LINES = [
    "나는 너를 사랑해.",
    "이 영화 정말 재미있어요! 배우들 연기가 최고였다.",
    "오늘 날씨가 좋네요. 산책하러 갈까요?",
    "스토리가 지루하고 결말이 최악이었다 ㅋㅋㅋ",
    "I love you.",
    "This movie was a wonderful surprise, the actors were great.",
    "The plot was boring and the ending was the worst.",
    "Je t'aime. Où est la gare ? L'été à Paris est très agréable.",
    "Il fait beau aujourd'hui, allons nous promener.",
    "Emoji 😀👍 and 한국어 mixed in one line: café, naïve, 2024.",
]


def sample_corpus(repeats: int = 30) -> list[str]:
    lines = []
    for i in range(repeats):
        for line in SAMPLE_LINES:
            lines.append(line if i % 2 == 0 else line.lower())
    return lines


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train(sample_corpus(), TokenizerConfig(vocab_size=360, character_coverage=1.0))


@pytest.fixture(autouse=True)
def _user_home(tmp_path, monkeypatch):
    home = tmp_path / "malbeot-home"
    monkeypatch.setenv("MALBEOT_HOME", str(home))
    return home
