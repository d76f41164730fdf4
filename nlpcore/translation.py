"""The translation service: :class:`Translator` over the installed ``translate-<src>-<tgt>`` packages.

One translation: normalise → split into paragraphs (kept), sentences and
the parts kept as they are (list markers, addresses, emoji) →
SentencePiece-encode → the encoder runs once per batch of sentences → beam
search over the NumPy decoder step (all beams of all sentences in a batch are
one array) → unknown pieces replaced by their most-attended source piece →
decode → :class:`~nlpcore.services.Translation` with the n-best list, scores,
attention [T_tgt, T_src] and timings.

Importing this module is cheap: Keras loads with the first model.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from .inference import blas_threads, pad_batch
from .numpy_rnn import log_softmax
from .services import DEFAULT_LENGTH_PENALTY, Hypothesis, TranslateOptions, Translation
from .text import count_scripts, is_latin
from .tokenizer import BOS_ID, EOS_ID, UNK_ID, normalize

if TYPE_CHECKING:
    import keras

    from .decoding import SearchHypothesis
    from .packages import Package
    from .tokenizer import Tokenizer

PACKAGE_PREFIX = "translate-"
# A sentence ends at . ! ? … (and the closing quotes or brackets after them) and a space.
_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’»)\]]*\s+")
_PARAGRAPH_BREAK = re.compile(r"(\s*\n\s*)")
# A list item's marker at the start of a line: "1.", "2)", "(a)", "C)", "-", "*", "•".
_LIST_MARKER = re.compile(r"^(?:\d{1,3}[.)]|\(?[A-Za-z0-9]\)|[-*•·‣▪◦])\s+")
# Kept as they are, not translated: web addresses, e-mail addresses, emoji (with their
# modifiers and joiners). A web address ends before the punctuation that ends its sentence.
_PICTOGRAPHS = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF"
_VERBATIM = re.compile(
    r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]\"'”’»]*(?:\s|$))"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    rf"|(?:[{_PICTOGRAPHS}][\uFE0F\u200D\U000E0020-\U000E007F]*)+")
# English "i" on its own ("i think", "i'm"), not in "i.e." or "i-th".
_ENGLISH_I = re.compile(r"(?<![\w'’.-])i(?=$|\s|['’][a-z]|[,.!?;:](?:\s|$))")


# ====================================================================== text layout
def split_paragraphs(text: str) -> list[tuple[str, str]]:
    """(paragraph, separator that follows it) pairs; joining them gives back the layout.

    Spaces inside a line are squeezed; runs of blank lines are kept as they are
    (minus trailing spaces), so a translation keeps the input's paragraph structure.
    """
    parts = _PARAGRAPH_BREAK.split(normalize(text).strip())
    out = []
    for i in range(0, len(parts), 2):
        separator = parts[i + 1] if i + 1 < len(parts) else ""
        out.append((" ".join(parts[i].split()), "\n" * separator.count("\n")))
    return out


@functools.cache
def _segmenter(language: str):
    """pySBD's rule-based sentence splitter for ``language`` (it knows each language's
    abbreviations: "Dr. Smith", "M. Dupont", "p.m."), or None where it has no rules (Korean)."""
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    return pysbd.Segmenter(language=language, clean=False) if language in LANGUAGE_CODES else None


def split_sentences(paragraph: str, language: str = "") -> list[str]:
    """Sentences of one paragraph. With pySBD's rules for ``language`` where it has
    them, otherwise after ``. ! ? …`` (and closing quotes) followed by a space; a
    sentence never ends inside a word (pySBD would cut a web address at its ``?``)."""
    if not _SENTENCE_END.search(paragraph):  # one sentence (most): pySBD would take 0.2 ms to say so
        return [paragraph.strip()] if paragraph.strip() else []
    segmenter = _segmenter(language) if language else None
    if segmenter is None:
        cuts = [m.end() for m in _SENTENCE_END.finditer(paragraph)]
        pieces = [paragraph[a:b] for a, b in zip([0, *cuts], [*cuts, len(paragraph)])]
    else:
        pieces = segmenter.segment(paragraph)
    sentences, pending = [], ""
    for i, piece in enumerate(pieces):
        pending += piece
        if pending[-1:].isspace() or i == len(pieces) - 1:
            sentences.append(pending.strip())
            pending = ""
    return [s for s in sentences if s]


_CLOSING = "\"'”’»)]"
_FINAL = (".", "!", "?", "…", "。", "！", "？", ":", ";")


@dataclass(frozen=True)
class Part:
    """A stretch of a paragraph, translated or kept as it is (``source`` None).

    source: what the model reads (see :func:`_model_text`).
    upper: the original was in capitals, so is the translation.
    opened: it does not start a sentence (it follows a kept part), so its
        translation does not gain a capital letter.
    closed: the original, in Latin letters, had no final punctuation, so the
        model read it with a full stop (the sentences it learnt from have one;
        without, it may not know where to stop) and the translation loses it.
    space: a space came before it.
    """

    text: str
    source: str | None = None
    upper: bool = False
    opened: bool = False
    closed: bool = False
    space: bool = True


def _model_text(text: str, language: str, sentence_start: bool) -> tuple[str, bool, bool]:
    """(what the model reads, whether the text was in capitals, whether a full
    stop was added). The models learnt from sentences written the usual way, so
    text in capitals is read in lower case with a capital first letter, a
    sentence's lower-case first letter is capitalised, English "i" is written
    "I", and a sentence without final punctuation gets a full stop. Korean is
    left as it is: its transcribed speech has no full stops, and its phrases
    ("물 한 컵") would be read as sentences ("I have a cup of water.")."""
    latin = count_scripts(text).majority == "en"
    cased = [ch for ch in text if ch.lower() != ch.upper()]
    upper = latin and len(cased) >= 4 and all(ch.isupper() for ch in cased)
    if upper:
        text = text.lower()
    if language == "en":
        text = _ENGLISH_I.sub("I", text)
    if sentence_start or upper:
        first = next((i for i, ch in enumerate(text) if ch.isalpha()), None)
        if first is not None and text[first].islower() and is_latin(text[first]):
            text = text[:first] + text[first].upper() + text[first + 1 :]
    closed = latin and not text.rstrip(_CLOSING).endswith(_FINAL)
    return (text + "." if closed else text), upper, closed


def paragraph_parts(paragraph: str, language: str = "", sentence_input: bool = True) -> list[Part]:
    """A paragraph cut into the parts a translation keeps (a list item's marker,
    web and e-mail addresses, emoji, stretches without letters) and the sentences
    (or the stretches of one between kept parts) it translates, read as
    :func:`_model_text` says when ``sentence_input``, otherwise as they are."""
    parts: list[Part] = []
    marker = _LIST_MARKER.match(paragraph)
    if marker:
        parts.append(Part(marker.group().strip()))
        paragraph = paragraph[marker.end() :]
    for sentence in split_sentences(paragraph, language):
        position, start, space = 0, True, True
        stretches = []
        for match in _VERBATIM.finditer(sentence):
            stretches += [(sentence[position : match.start()], True), (match.group(), False)]
            position = match.end()
        stretches.append((sentence[position:], True))
        for stretch, translated in stretches:
            text = stretch.strip()
            if not text:
                space = space or bool(stretch)
                continue
            space = space or stretch[:1].isspace()
            if translated and any(ch.isalpha() for ch in text):
                source, upper, closed = _model_text(text, language, start) if sentence_input else (text, False, False)
                parts.append(Part(text, source, upper, not start, closed, space))
            else:
                parts.append(Part(text, space=space))
            start, space = False, stretch[-1:].isspace()
    return parts


def _fit(translation: str, part: Part) -> str:
    """A translation put in its part's place (see :class:`Part`)."""
    if part.closed and translation.endswith((".", "。")) and not translation.endswith(".."):
        translation = translation[:-1]
    if part.upper:
        return translation.upper()
    if part.opened and part.text[:1].islower() and translation[:1].isupper() and translation[1:2].islower():
        translation = translation[0].lower() + translation[1:]
    return translation


def _chunks(ids: list[int], limit: int, pieces: list[str]) -> list[list[int]]:
    """Cut an over-long sentence into runs of ≤ ``limit`` pieces, preferring word starts after punctuation."""
    out, start = [], 0
    while len(ids) - start > limit:
        end = start + limit
        cut = next((i for i in range(end, start + limit // 2, -1)
                    if pieces[i].startswith("\u2581") and pieces[i - 1][-1:] in ",;:"), None)
        cut = cut or next((i for i in range(end, start + limit // 2, -1) if pieces[i].startswith("\u2581")), end)
        out.append(ids[start:cut])
        start = cut
    out.append(ids[start:])
    return out


# ====================================================================== one model
@dataclass(frozen=True)
class SentenceResult:
    """One source sentence (or chunk) and its n-best hypotheses (as service records)."""

    source_pieces: tuple[str, ...]
    hypotheses: tuple[Hypothesis, ...]


def best_text(chunks: Sequence[SentenceResult]) -> str:
    """A sentence's translation: the best hypothesis of each of its chunks, joined."""
    return " ".join(c.hypotheses[0].text for c in chunks if c.hypotheses)


class TranslationModel:
    """One translation direction: tokenizers, the Keras model and its NumPy twin.

    Build from a package with :meth:`from_package`, or from an in-memory model
    (the trainer evaluates that way). ``keras_model`` stays the source of
    truth; decoding runs on :class:`~nlpcore.inference.NumpySeq2Seq`.
    """

    def __init__(self, keras_model: "keras.Model", config: Any, source_tokenizer: "Tokenizer",
                 target_tokenizer: "Tokenizer", name: str = "", source_lang: str = "", target_lang: str = "",
                 threads: int | None = 1, length_penalty: float = DEFAULT_LENGTH_PENALTY,
                 bulk_threads: int | None = None, channel: "TranslationModel | str | None" = None,
                 channel_weight: float = 0.0, channel_candidates: int = 0, channel_max_source: int = 0,
                 sentence_input: bool = True):
        from .inference import NumpySeq2Seq

        self.name = name
        self.model_config = config
        self.source_lang = source_lang
        self.target_lang = target_lang
        self.keras_model = keras_model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.numpy = NumpySeq2Seq(keras_model, config)
        self.threads = threads  # BLAS threads while decoding (None: leave NumPy's setting)
        # ... and while decoding more than one batch of sentences, whose matrices are large enough for more
        # threads to pay (measured, ko→en, 1,934 sentences on 2 cores: 41 s with one thread, 33 s with two)
        self.bulk_threads = bulk_threads
        self.length_penalty = length_penalty  # the GNMT alpha options leave to the model (tuned on validation)
        # The reverse direction's model, which reranks the beam's hypotheses by how well each explains the
        # source (noisy channel), or its package name, loaded when a search first reranks (see channel);
        # and the weight options leave to the model (tuned on validation).
        self._channel = channel
        self._channel_lock = threading.Lock()
        self.channel_weight = channel_weight
        # How many of the beam's best hypotheses are reranked (0: all): each costs a pass of the channel model.
        self.channel_candidates = channel_candidates
        # ... and only for sources of at most this many pieces (0: any): the pass grows with the length.
        self.channel_max_source = channel_max_source
        # Whether input is read as the sentences the model learnt from (see paragraph_parts).
        self.sentence_input = sentence_input
        self.train_config = None  # the package's training config, when the model comes from one

    @classmethod
    def from_package(cls, package: "Package", with_channel: bool = True) -> "TranslationModel":
        """The package's model; with the reverse-direction package its config names
        for reranking (``channel_model``) when ``with_channel`` and that one is installed."""
        from .train.translation import TranslationTrainConfig

        config = package.config(TranslationTrainConfig)
        model = cls(package.load_model(), config.model, package.tokenizer("source"), package.tokenizer("target"),
                    name=package.card.name, source_lang=config.source, target_lang=config.target,
                    length_penalty=config.length_penalty, sentence_input=config.sentence_input,
                    **cls.channel_settings(config, load=with_channel))
        model.train_config = config
        return model

    @classmethod
    def channel_settings(cls, config: Any, load: bool = True) -> dict[str, Any]:
        """The reranking arguments a translation config gives the constructor: its
        ``channel_model`` (when named and ``load``; loaded on first use) and how it reranks."""
        return {"channel": config.channel_model if load and config.channel_model else None,
                "channel_weight": config.channel_weight, "channel_candidates": config.channel_candidates,
                "channel_max_source": config.channel_max_source}

    @property
    def channel(self) -> "TranslationModel | None":
        """The reranking model: None without one, or when its package cannot be
        loaded (a warning, once). A package named by the config loads on first
        use, so a model that reranks only when asked does not load it until then."""
        with self._channel_lock:
            if isinstance(self._channel, str):
                self._channel = self.load_channel(self._channel)
            return self._channel

    @classmethod
    def load_channel(cls, name: str) -> "TranslationModel | None":
        """The installed package ``name`` (without its own channel), or None with a
        warning when it cannot be loaded: translation then goes on without reranking."""
        import warnings

        from .packages import PackageError, find_package, load_package

        try:
            return cls.from_package(load_package(find_package(name)), with_channel=False)
        except PackageError as exc:
            warnings.warn(f"translating without reranking: {exc}", RuntimeWarning, stacklevel=3)
            return None

    def alpha(self, options: TranslateOptions) -> float:
        """The length penalty a search runs with: the options', else this model's."""
        return self.length_penalty if options.length_penalty is None else options.length_penalty

    def reranking_weight(self, options: TranslateOptions) -> float:
        """The noisy-channel weight a search runs with: the options', else this
        model's; 0 without a channel model or a beam."""
        weight = self.channel_weight if options.channel_weight is None else options.channel_weight
        if not weight or options.beam_size == 1 or self.channel is None:
            return 0.0
        return weight

    # ---------------------------------------------------------------- search
    def search(self, sequences: Sequence[Sequence[int]], options: TranslateOptions = TranslateOptions(),
               batch_size: int = 64, timings: dict[str, float] | None = None) -> list[list["SearchHypothesis"]]:
        """n-best hypotheses for each source id list (at most ``max_source_length`` pieces each).

        Sentences are decoded in batches of similar length: the encoder runs
        once per batch, then one beam search steps all their beams together.
        With a channel model and a reranking weight, the beam's best
        :meth:`candidates` are reranked (:meth:`rerank`) and the first
        ``n_best`` of them kept, so the best translation does not depend on
        ``n_best`` (and fewer may come back than asked).
        ``timings``, when given, gets the seconds spent in ``encode``, ``search``
        and ``rerank`` added.
        """
        timings = {} if timings is None else timings
        for stage in ("encode", "search", "rerank"):
            timings.setdefault(stage, 0.0)
        with blas_threads(self.threads if len(sequences) <= batch_size else self.bulk_threads):
            return self._search(sequences, options, batch_size, timings)

    def _search(self, sequences, options, batch_size, timings):
        from .decoding import beam_search, greedy_search

        limit = self.model_config.max_source_length
        weight = self.reranking_weight(options)
        results: list[list] = [[] for _ in sequences]
        order = np.argsort([len(s) for s in sequences], kind="stable")
        order = [i for i in order if len(sequences[i])]  # empty sources translate to nothing
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            source = pad_batch([list(sequences[i])[:limit] for i in rows])
            started = time.perf_counter()
            encoded = self.numpy.encode(source)
            encoded_at = time.perf_counter()
            timings["encode"] += encoded_at - started
            lengths = encoded.lengths
            max_length = np.minimum(np.ceil(options.max_length_ratio * lengths) + 10,
                                    self.model_config.max_target_length).astype(np.int64)
            start_ids = np.full(len(rows), BOS_ID, np.int32)
            step = self.numpy.step_function(encoded)
            if options.beam_size == 1:
                found = [[h] for h in greedy_search(
                    step, start_ids, encoded.state, max_length, no_repeat_ngram=options.no_repeat_ngram,
                    length_penalty_alpha=self.alpha(options))]
            else:
                found = beam_search(
                    step, start_ids, encoded.state, options.beam_size, max_length,
                    n_best=self.candidates(options) if weight else options.n_best,
                    length_penalty_alpha=self.alpha(options), no_repeat_ngram=options.no_repeat_ngram,
                    stopping=options.stopping)
            searched_at = time.perf_counter()
            timings["search"] += searched_at - encoded_at
            if weight:
                found = [hypotheses[: options.n_best]
                         for hypotheses in self.rerank([sequences[i] for i in rows], found, weight)]
                timings["rerank"] += time.perf_counter() - searched_at
            for row, hypotheses in zip(rows, found):
                results[row] = hypotheses
        return results

    def candidates(self, options: TranslateOptions) -> int:
        """How many of its best hypotheses a beam search keeps for reranking (at most the beam)."""
        return min(self.channel_candidates or options.beam_size, options.beam_size)

    def rerank(self, sources: Sequence[Sequence[int]], found: Sequence[Sequence["SearchHypothesis"]],
               weight: float, scorer: Callable | None = None) -> list[list["SearchHypothesis"]]:
        """Each source's hypotheses re-sorted by ``score + weight * log P(source | hypothesis)``
        under the channel model (noisy-channel reranking; see :func:`nlpcore.decoding.rerank`).

        The channel reads the hypothesis' text and scores the source's text, each
        through its own tokenizers; the hypotheses of all sources are scored
        together. An empty hypothesis explains nothing and scores -inf. A lone
        hypothesis, and those of a source longer than ``channel_max_source``
        pieces, keep the search's order and scores. ``scorer(sources, targets)
        -> log-probabilities`` replaces the channel's NumPy
        :meth:`~nlpcore.inference.NumpySeq2Seq.log_prob` (the benchmark's naive path).
        """
        from .decoding import rerank

        channel = self.channel
        limit = channel.model_config.max_source_length
        longest = self.channel_max_source or max(map(len, sources), default=0)
        # A lone hypothesis, or those of a source over the length limit, keep their order and scores.
        chosen = [i for i, hypotheses in enumerate(found) if len(hypotheses) > 1 and len(sources[i]) <= longest]
        flat = [(i, channel.source_tokenizer.encode(self.target_tokenizer.decode(list(h.ids)))[:limit])
                for i in chosen for h in found[i]]
        scored = [k for k, (_, ids) in enumerate(flat) if ids]
        extra = np.full(len(flat), -np.inf)
        if scored:
            targets = {i: channel.target_tokenizer.encode(self.source_tokenizer.decode(list(sources[i])))
                       for i in chosen}
            extra[scored] = (scorer or channel.numpy.log_prob)([flat[k][1] for k in scored],
                                                               [targets[flat[k][0]] for k in scored])
        out, k = [list(hypotheses) for hypotheses in found], 0
        for i in chosen:
            out[i] = rerank(found[i], extra[k : k + len(found[i])], weight)
            k += len(found[i])
        return out

    # ---------------------------------------------------------------- sentences
    def prepare(self, sentence: str) -> list[tuple[list[int], list[str]]]:
        """(ids, pieces) of a sentence, cut into chunks the model accepts."""
        ids = self.source_tokenizer.encode(sentence)
        pieces = [self.source_tokenizer.id_to_piece(i) for i in ids]
        limit = self.model_config.max_source_length
        if len(ids) <= limit:
            return [(ids, pieces)]
        out, start = [], 0
        for chunk in _chunks(ids, limit, pieces):
            out.append((chunk, pieces[start : start + len(chunk)]))
            start += len(chunk)
        return out

    def to_hypothesis(self, found: "SearchHypothesis", source_pieces: Sequence[str],
                      options: TranslateOptions) -> Hypothesis:
        from .decoding import copy_numbers, replace_unknown

        ids = list(found.ids)
        pieces = [self.target_tokenizer.id_to_piece(i) for i in ids]
        attention = found.attention
        if attention is not None:
            attention = np.asarray(attention, np.float32)[:, : len(source_pieces)]
        if options.replace_unknown and UNK_ID in ids:
            pieces = replace_unknown(ids, attention, list(source_pieces), pieces, UNK_ID)
            text = self.target_tokenizer.decode_pieces(pieces)
        else:
            text = self.target_tokenizer.decode(ids)
        if options.copy_numbers:
            text = copy_numbers(source_pieces, pieces, attention) or text
        return Hypothesis(text=text, score=float(found.score), pieces=tuple(pieces), attention=attention)

    def translate_sentences(self, sentences: Sequence[str], options: TranslateOptions = TranslateOptions(),
                            batch_size: int = 64, timings: dict[str, float] | None = None
                            ) -> list[list[SentenceResult]]:
        """For each sentence, its chunks' results (one chunk unless it is over-long)."""
        prepared = [self.prepare(s) for s in sentences]
        flat = [chunk for chunks in prepared for chunk in chunks]
        found = self.search([ids for ids, _ in flat], options, batch_size, timings)
        results, k = [], 0
        for chunks in prepared:
            mine = []
            for ids, pieces in chunks:
                hyps = tuple(self.to_hypothesis(h, pieces, options) for h in found[k])
                mine.append(SentenceResult(tuple(pieces), hyps))
                k += 1
            results.append(mine)
        return results

    def evaluate(self, sources: Sequence[str], references: Sequence[str],
                 options: TranslateOptions = TranslateOptions()) -> tuple[dict[str, Any], list[str]]:
        """Translate ``sources`` (best hypothesis, over-long ones chunked and rejoined)
        and score them against ``references`` with sacrebleu: ({bleu, chrf,
        sentences, beam_size, length_penalty, stopping, channel_weight,
        decode_seconds}, translations)."""
        from .evaluate import bleu_chrf

        started = time.perf_counter()
        results = self.translate_sentences(list(sources), options)
        seconds = time.perf_counter() - started
        hypotheses = [best_text(chunks) for chunks in results]
        scores = bleu_chrf(hypotheses, list(references))
        return ({**{k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()},
                 "beam_size": options.beam_size, "length_penalty": self.alpha(options), "stopping": options.stopping,
                 "channel_weight": self.reranking_weight(options), "decode_seconds": round(seconds, 1)}, hypotheses)


# ====================================================================== the naive path
class KerasStepDecoder:
    """The naive decoding path the benchmark compares against: the Keras encoder
    model once per batch, then ``decoder_step.predict`` once per step.

    ``start(source ids [B, S]) -> state``; ``step`` has the
    :mod:`nlpcore.decoding.step` contract, so the same searches run on it.
    """

    def __init__(self, keras_model: "keras.Model", config: Any):
        from .models.seq2seq import build_decoder_step, build_encoder

        self.config = config
        self.encoder = build_encoder(keras_model, config)
        self.decoder = build_decoder_step(keras_model, config)

    def start(self, source: np.ndarray) -> dict:
        outputs = [np.asarray(o) for o in self.encoder.predict(source, verbose=0)]
        states = outputs[1:]
        if self.config.input_feeding:
            states.append(np.zeros_like(states[0]))
        return {"source": np.asarray(source, np.int32), "memory": outputs[0], "states": tuple(states)}

    def step(self, ids: np.ndarray, state: dict):
        inputs = {"ids": np.asarray(ids, np.int32)[:, None], "source": state["source"], "memory": state["memory"],
                  **{f"state_{k}": s for k, s in enumerate(state["states"])}}
        outputs = [np.asarray(o) for o in self.decoder.predict(inputs, verbose=0)]
        return outputs[0], {**state, "states": tuple(outputs[2:])}, outputs[1]


def keras_log_prob(keras_model: "keras.Model", sources: Sequence[Sequence[int]],
                   targets: Sequence[Sequence[int]]) -> np.ndarray:
    """:meth:`~nlpcore.inference.NumpySeq2Seq.log_prob` through the Keras training
    model, one ``predict`` for the batch: the reference the fast path is tested
    against, and the naive path's reranking in the benchmark."""
    target_in = pad_batch([[BOS_ID, *t] for t in targets])
    log_probs = log_softmax(np.asarray(keras_model.predict({"source": pad_batch([list(s) for s in sources]),
                                                            "target_in": target_in}, verbose=0), np.float64))
    return np.array([sum(log_probs[row, t, piece] for t, piece in enumerate([*target, EOS_ID]))
                     for row, target in enumerate(targets)])


# ====================================================================== the service
def _join(parts: Sequence[tuple[str, str]]) -> str:
    return "".join(text + separator for text, separator in parts)


def _block_diagonal(blocks: Sequence[np.ndarray | None]) -> np.ndarray | None:
    if any(b is None for b in blocks):
        return None
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    out = np.zeros((rows, cols), np.float32)
    r = c = 0
    for b in blocks:
        out[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


class Translator:
    """Translation between the language pairs of the installed packages.

    ``translate(text, src, tgt, options)`` keeps the input's paragraphs (line
    breaks), list markers, web and e-mail addresses and emoji, and translates
    each sentence (or each stretch of one between those) on its own, read as
    the models learnt sentences (:func:`paragraph_parts`); the result's n-best list
    joins the k-th hypothesis of every sentence, its score is their mean, and
    its attention is block-diagonal over all source and target pieces
    ([T_tgt, T_src], rows sum to 1; ``Translation.source_pieces`` are the
    columns). Empty or blank input gives an empty translation.
    """

    def __init__(self, models: Iterable[TranslationModel]):
        self._models = {(m.source_lang, m.target_lang): m for m in models}
        if not self._models:
            raise ValueError("a Translator needs at least one model")

    @classmethod
    def load(cls, names: Sequence[str] | None = None) -> "Translator":
        """Load every installed ``translate-<src>-<tgt>`` package (or only ``names``).

        Unreadable packages are skipped; none at all is a PackageError naming why.
        """
        from .packages import PackageError, find_package, iter_packages, load_package

        if names is None:
            names = [path.name for path, card in iter_packages() if path.name.startswith(PACKAGE_PREFIX)
                     and (isinstance(card, PackageError) or card.task == "translation")]
        models, errors = [], []
        for name in names:
            try:
                models.append(TranslationModel.from_package(load_package(find_package(name))))
            except PackageError as exc:
                errors.append(str(exc))
        if not models:
            raise PackageError("no translation model could be loaded"
                               + (": " + "; ".join(errors) if errors else " (none is installed)"))
        return cls(models)

    @classmethod
    def for_direction(cls, src: str, tgt: str) -> "Translator":
        """Only the ``translate-<src>-<tgt>`` package, for work in one direction (each
        package loaded costs its hashing and its Keras model); where it is not
        installed, every installed package, so that the error names the directions there are."""
        from .packages import PackageError, find_package

        name = f"{PACKAGE_PREFIX}{src}-{tgt}"
        try:
            find_package(name)
        except PackageError:
            translator = cls.load()
            translator.model(src, tgt)  # another package may translate this way; else the error says which do
            return translator
        return cls.load([name])

    @property
    def directions(self) -> list[tuple[str, str]]:
        """(source, target) language codes that can be translated, e.g. ``("en", "fr")``."""
        return sorted(self._models)

    @property
    def models(self) -> list[str]:
        return [m.name for m in self._models.values()]

    def model(self, src: str, tgt: str) -> TranslationModel:
        if (src, tgt) not in self._models:
            from .packages import PackageError

            have = ", ".join(f"{s}→{t}" for s, t in self.directions)
            raise PackageError(f"no translation model for {src}→{tgt} is installed (installed: {have})")
        return self._models[(src, tgt)]

    def translate(self, text: str, src: str, tgt: str,
                  options: TranslateOptions = TranslateOptions()) -> Translation:
        """Translate one text (any number of sentences and paragraphs)."""
        return self.translate_batch([text], src, tgt, options)[0]

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str,
                        options: TranslateOptions = TranslateOptions(), batch_size: int = 64) -> list[Translation]:
        """Translate many texts at once: every sentence of every text goes into
        length-sorted batches (identical sentences are decoded once)."""
        started = time.perf_counter()
        model = self.model(src, tgt)
        layouts = []  # per text: [(parts, separator)]
        unique: dict[str, int] = {}
        for text in texts:
            layout = []
            for paragraph, separator in split_paragraphs(text if isinstance(text, str) else ""):
                parts = paragraph_parts(paragraph, src, model.sentence_input)
                for part in parts:
                    if part.source is not None:
                        unique.setdefault(part.source, len(unique))
                layout.append((parts, separator))
            layouts.append(layout)
        stages = {"encode": 0.0, "search": 0.0}
        results = model.translate_sentences(list(unique), options, batch_size, stages) if unique else []
        total = time.perf_counter() - started
        # A batch's time is shared out by sentence count (exact for a single text).
        share = {stage: seconds / max(len(unique), 1) for stage, seconds in stages.items()}
        share["total"] = total / max(len(unique), 1)
        out = []
        for text, layout in zip(texts, layouts):
            sentences = {part.source for parts, _ in layout for part in parts if part.source is not None}
            chunks = {s: results[unique[s]] for s in sentences}
            out.append(self._assemble(text, src, tgt, model.name, layout, chunks, options,
                                      {stage: round(seconds * len(sentences), 6) for stage, seconds in share.items()}))
        return out

    def _assemble(self, text, src, tgt, name, layout, chunks, options, timings) -> Translation:
        """The k-th hypothesis of the text: the k-th of each sentence put in its
        part's place, the kept parts as they were, the paragraphs' breaks kept."""
        hypotheses = []
        n = max((len(r.hypotheses) for results in chunks.values() for r in results), default=1)
        translated = [part.source for parts, _ in layout for part in parts if part.source is not None]
        source_pieces = [p for s in translated for r in chunks[s] for p in r.source_pieces]
        for k in range(n):
            paragraphs, pieces, blocks, scores = [], [], [], []
            for parts, separator in layout:
                line = ""
                for part in parts:
                    if part.source is None:
                        words = part.text
                    else:
                        texts = []
                        for r in chunks[part.source]:
                            h = r.hypotheses[min(k, len(r.hypotheses) - 1)] if r.hypotheses else Hypothesis("", 0.0)
                            texts.append(h.text)
                            pieces.extend(h.pieces)
                            blocks.append(h.attention if h.attention is not None
                                          else (np.zeros((0, len(r.source_pieces)), np.float32) if not r.hypotheses
                                                else None))
                            scores.append(h.score)
                        words = _fit(" ".join(t for t in texts if t), part)
                    if words:
                        line += (" " if line and part.space else "") + words
                paragraphs.append((line, separator))
            hypotheses.append(Hypothesis(text=_join(paragraphs),
                                         score=float(np.mean(scores)) if scores else 0.0,
                                         pieces=tuple(pieces), attention=_block_diagonal(blocks)))
        return Translation(source=text, src_lang=src, tgt_lang=tgt, hypotheses=tuple(hypotheses),
                           source_pieces=tuple(source_pieces), model=name,
                           timings=timings)


# ====================================================================== command line
def cli_translate(args) -> int:
    """``nlpcore translate --src S --tgt T [--beam K] [--json] [TEXT ...]``.

    Each TEXT, or each stdin line when there is none, gives exactly one output
    line, in order: the translation (line breaks inside a TEXT become spaces),
    or with ``--json`` an object ``{"translation", "score", "model"}``
    (``"error"`` instead of a score when the line could not be read). Empty
    lines give empty lines. Exit status 1 when no model for the direction is
    installed.
    """
    from .packages import PackageError

    try:
        options = TranslateOptions(beam_size=max(1, int(getattr(args, "beam", 5) or 1)))
        translator = Translator.for_direction(args.src, args.tgt)
        translator.model(args.src, args.tgt)
    except (PackageError, ValueError) as exc:
        sys.stderr.write(f"nlpcore: {exc}\n")
        return 1
    as_json = bool(getattr(args, "json", False))
    from .cli import chunks, read_stdin_lines

    source = ((t, None) for t in args.texts) if getattr(args, "texts", None) else read_stdin_lines()
    out = sys.stdout
    for chunk in chunks(source, 2048):
        translations = translator.translate_batch([t or "" for t, _ in chunk], args.src, args.tgt, options)
        for (text, error), result in zip(chunk, translations):
            if as_json:
                record: dict[str, Any] = {"translation": result.text}
                if error is not None:
                    record["error"] = error
                else:
                    record["score"] = round(result.hypotheses[0].score, 6) if result.hypotheses else 0.0
                    record["model"] = result.model
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                out.write(" ".join(result.text.split("\n")) + "\n")
        out.flush()
    return 0


# ====================================================================== benchmark
def benchmark(src: str = "en", tgt: str = "fr", bulk_lines: int = 2000, repeats: int = 100) -> dict[str, Any]:
    """Speed of the installed ``translate-<src>-<tgt>`` model against the naive Keras path.

    Sentences are drawn from the validation side of the model's corpus split.
    Records: the NumPy decoder step for 5 rows, one sentence with beam 5
    through the service (p50/p90), then 30 other sentences through the service
    and through :class:`KerasStepDecoder` in turn (the same search, ``predict``
    per step; with the model's reranking, one ``predict`` of the channel model
    for the hypotheses) and the speed-up on them (:func:`bench.paired`), and
    ``bulk_lines`` sentences through the command-line function in a fresh
    process (whole-process seconds).
    """
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    import keras

    from . import bench
    from . import data as corpora
    from .decoding import beam_search, tile_state
    from .train.translation import in_validation

    translator = Translator.for_direction(src, tgt)
    model = translator.model(src, tgt)
    config = model.train_config
    pairs = corpora.read_parallel(corpora.corpus_path(config.corpus), config.source, config.target)
    held_out = [p.source for p in pairs if in_validation(config, p)]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(held_out))
    # A small validation split (ko-en) is repeated to make up ``bulk_lines`` lines.
    sentences = [held_out[order[i % len(order)]] for i in range(max(bulk_lines, repeats))]
    options = TranslateOptions(beam_size=5)
    record: dict[str, Any] = {"what": "translate", "model": model.name, "machine": bench.machine(),
                              "keras_backend": keras.backend.backend()}

    encoded = model.numpy.encode(pad_batch([model.source_tokenizer.encode(sentences[0])]))
    beams = tile_state(encoded.state, 5)
    step = model.numpy.step_function(encoded)
    ids = np.full(5, BOS_ID, np.int32)
    with blas_threads(model.threads):
        record["numpy_step_5_rows"] = bench.timed(lambda: step(ids, beams), repeats * 5)
    cycle = iter(sentences * 100)
    record["service_beam5_one_sentence"] = bench.timed(lambda: translator.translate(next(cycle), src, tgt, options),
                                                       repeats)

    naive = KerasStepDecoder(model.keras_model, model.model_config)
    weight = model.reranking_weight(options)

    def naive_translate(sentence: str):  # the same search and reranking, each model run through Keras
        ids = model.source_tokenizer.encode(sentence)
        source = pad_batch([ids])
        limit = int(min(options.max_length_ratio * source.shape[1] + 10, model.model_config.max_target_length))
        found = beam_search(naive.step, [BOS_ID], naive.start(source), 5, limit,
                            n_best=model.candidates(options) if weight else 1,
                            length_penalty_alpha=model.alpha(options), no_repeat_ngram=options.no_repeat_ngram,
                            stopping=options.stopping)
        if weight:
            found = model.rerank([ids], found, weight,
                                 lambda s, t: keras_log_prob(model.channel.keras_model, s, t))
        return found

    compared = bench.paired(lambda sentence: translator.translate(sentence, src, tgt, options), naive_translate,
                            sentences[-32:])
    record["service_beam5_naive_sentences"] = compared["fast"]
    record["naive_predict_per_step_beam5"] = compared["slow"]
    record["speedup_p50"] = compared["speedup_p50"]
    record["speedup_per_sentence_median"] = compared["speedup_per_item_median"]

    code = ("import sys, argparse; from nlpcore.translation import cli_translate; "
            f"sys.exit(cli_translate(argparse.Namespace(src={src!r}, tgt={tgt!r}, beam=5, json=False, texts=[])))")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text("\n".join(s.replace("\n", " ") for s in sentences[:bulk_lines]) + "\n", encoding="utf-8")
        started = time.perf_counter()
        with open(path, "rb") as stdin:
            result = subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True, check=True,
                                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        seconds = time.perf_counter() - started
    outputs = result.stdout.decode("utf-8").splitlines()
    record["bulk_cli"] = {"lines": bulk_lines, "distinct_lines": len(set(sentences[:bulk_lines])),
                          "outputs": len(outputs), "beam": 5, "seconds": round(seconds, 2),
                          "lines_per_second": round(bulk_lines / seconds, 1)}
    return record
