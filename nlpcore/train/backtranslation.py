"""Back-translation: synthetic sentence pairs from a monolingual corpus.

``nlpcore backtranslate --model translate-ko-en --corpus ko_chatbot --output runs/bt/ko_chatbot.tsv``

A model of the reverse direction (here ko→en) translates real sentences of
the language a new model is to produce (Korean, for en→ko); the pairs
(machine English, real Korean) then train that model as one of its
``extra_corpora`` (Sennrich et al. 2016): its decoder learns from real
Korean sentences, its encoder from imperfect English. With a small parallel
corpus this adds the target-language text it lacks.

The table has the columns of the parallel corpora (one per language code,
``source`` naming the origin ``<corpus>-bt``, ``license`` the monolingual
corpus's); a ``.json`` record beside it (model, version, beam, corpus,
sentences, seconds) goes into the card of every model trained on it.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, Iterator


@dataclass(frozen=True)
class Monolingual:
    """A corpus that back-translation can read sentences from."""

    language: str
    license: str
    description: str
    # paragraphs or sentences of the file, given the corpus readers
    # (nlpcore.data, imported by monolingual_sentences when a corpus is read,
    # not when the CLI builds its parser from MONOLINGUAL) and the file
    texts: Callable[[ModuleType, Path], Iterable[str]]


def _chatbot_texts(corpora: ModuleType, path: Path) -> Iterator[str]:
    for question, answer, _ in corpora.read_chatbot(path):
        yield question
        yield answer


def _english_of_pairs(corpora: ModuleType, path: Path) -> Iterator[str]:
    for pair in corpora.read_parallel(path, "en", "fr"):
        yield pair.source


# Runs of bare Hangul letters (ㅋㅋ, ㅠㅠ, ㅎㅎ: laughter and tears in reviews)
# and of repeated punctuation, which no translation renders.
_REVIEW_NOISE = re.compile(r"[\u3131-\u318e]+|([.,!?~^;])\1+")


def _review_texts(corpora: ModuleType, path: Path) -> Iterator[str]:
    for review in corpora.read_nsmc(path):
        text = _REVIEW_NOISE.sub(lambda m: (m.group(1) or "") + " ", review.text)
        if sum("\uac00" <= ch <= "\ud7a3" for ch in text) >= 6:  # a few Hangul syllables at least
            yield text


def _book_texts(reader: str) -> Callable[[ModuleType, Path], Iterator[str]]:
    """The lines of a book corpus that ``nlpcore.data.<reader>`` reads."""
    def texts(corpora: ModuleType, path: Path) -> Iterator[str]:
        for _, text in getattr(corpora, reader)(path):
            yield from text.split("\n")

    return texts


MONOLINGUAL = {
    "ko_chatbot": Monolingual("ko", "MIT", "Korean everyday questions and answers (songys/Chatbot_data)",
                              _chatbot_texts),
    "en-fr": Monolingual("en", "CC-BY-2.0-FR", "English sentences of the Tatoeba en-fr pairs", _english_of_pairs),
    "koconovel": Monolingual("ko", "CC-BY-SA-4.0", "45 modern Korean novels (storidient/KoCoNovel)",
                             _book_texts("read_koconovel")),
    "nsmc": Monolingual("ko", "CC0-1.0", "Korean movie reviews (NSMC train split)", _review_texts),
}


def monolingual_sentences(corpus: str, max_chars: int = 200, limit: int = 0, seed: int = 42) -> list[str]:
    """The distinct sentences of a monolingual corpus (paragraphs split at sentence
    ends, spacing squeezed), 2 to ``max_chars`` characters long; ``limit`` > 0
    draws that many (seeded), else all are kept in corpus order."""
    from .. import data as corpora
    from ..translation import split_sentences

    entry = MONOLINGUAL[corpus]
    seen: set[str] = set()
    sentences = []
    for text in entry.texts(corpora, corpora.corpus_path(corpus)):
        for sentence in split_sentences(" ".join(text.split())):
            if 2 <= len(sentence) <= max_chars and sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
    if 0 < limit < len(sentences):
        sentences = random.Random(seed).sample(sentences, limit)
    return sentences


# Tagged back-translation (Caswell et al. 2019): a config with
# ``tag_extra_corpora`` starts each machine-made source with this private-use
# character, which no real input holds (SentencePiece spells it in byte
# pieces), so the model can tell those sources from real ones.
TAG = "\ue000"


def tagged(source: str) -> str:
    """A back-translated source sentence as a tagged run trains on it."""
    return f"{TAG} {source}"


def origin(corpus: str) -> str:
    """The ``source`` column of the rows back-translated from ``corpus``."""
    return f"{corpus}-bt"


def sidecar(table: str | Path) -> Path:
    """The ``.json`` record beside a back-translated table."""
    return Path(table).with_suffix(".json")


def back_translate(model: str, corpus: str, output: str | Path, beam_size: int = 5, limit: int = 0,
                   batch: int = 2048, progress=sys.stderr) -> dict:
    """Translate the sentences of monolingual ``corpus`` with translation package
    ``model`` and write the table ``output`` (and its record). Returns the record."""
    from ..packages import find_package, load_package
    from ..services import TranslateOptions
    from ..translation import TranslationModel, best_text

    if corpus not in MONOLINGUAL:
        raise ValueError(f"unknown monolingual corpus {corpus!r}; known: {', '.join(MONOLINGUAL)}")
    entry = MONOLINGUAL[corpus]
    package = load_package(find_package(model))
    runner = TranslationModel.from_package(package)
    if runner.source_lang != entry.language:
        raise ValueError(f"{package.card.name} translates from {runner.source_lang}, "
                         f"but {corpus} is in {entry.language}")
    sentences = monolingual_sentences(corpus, limit=limit)
    options = TranslateOptions(beam_size=beam_size)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    started, written = time.perf_counter(), 0
    partial = output.with_name(output.name + ".part")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([runner.source_lang, runner.target_lang, "source", "license"])
        for start in range(0, len(sentences), batch):
            part = sentences[start:start + batch]
            for sentence, chunks in zip(part, runner.translate_sentences(part, options)):
                translation = best_text(chunks).strip()
                if translation:
                    writer.writerow([sentence, translation, origin(corpus), entry.license])
                    written += 1
            progress.write(f"{start + len(part):,}/{len(sentences):,} sentences\n")
            progress.flush()
    partial.replace(output)
    record = {"model": package.card.name, "version": package.card.version, "beam_size": beam_size,
              "corpus": corpus, "description": entry.description, "license": entry.license,
              "sentences": len(sentences), "pairs": written, "seconds": round(time.perf_counter() - started, 1)}
    sidecar(output).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def notes(record: dict, language: str) -> str:
    """A card's data note for the rows of a back-translated table."""
    return (f"{record['description']}; the {language} side machine-translated by {record['model']} "
            f"{record['version']} (beam {record['beam_size']}): back-translation")


def cli_backtranslate(args) -> int:
    """``nlpcore backtranslate --model M --corpus C --output FILE [--beam K] [--limit N]``."""
    from ..packages import PackageError

    try:
        record = back_translate(args.model, args.corpus, args.output, max(1, args.beam), max(0, args.limit))
    except (PackageError, ValueError) as exc:  # CorpusError is a ValueError
        sys.stderr.write(f"nlpcore: {exc}\n")
        return 1
    from ..cli import emit

    emit({"output": str(args.output), **record}, args.json,
         f"{record['pairs']:,} pairs from {record['sentences']:,} {args.corpus} sentences -> {args.output} "
         f"({record['seconds']:.0f} s)")
    return 0
