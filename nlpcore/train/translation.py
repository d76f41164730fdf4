"""Train a translation model and write its model package.

``nlpcore train translation --config configs/translate-en-fr.yaml``

Steps: read the parallel corpus (rows whose license is excluded are dropped),
split it by hashing each pair's source sentence, or the sentence in
``split_language`` (so a sentence with several translations never straddles
the split), train one SentencePiece model per
language on the training side, train the encoder–decoder with teacher forcing
over length-bucketed batches (validation every epoch, learning rate halved
when the validation loss stalls, early stopping, checkpoint + ``--resume``),
then translate the validation split with beam search, score it with BLEU and
chrF (sacrebleu) and write the package. With ``init_from`` the run starts
from another translation package that shares a language with it (transfer
learning for a small corpus, Zoph et al. 2016): the shared side keeps that
package's tokenizer and embedding, everything else but the new language's
embedding is copied. With ``compare_attention`` a second
model with the other attention type is trained with identical settings; both
are scored and the better one (validation BLEU) is shipped, the comparison
going into the card.
"""

from __future__ import annotations

import dataclasses
import html
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import data as corpora
from ..models.seq2seq import Seq2SeqConfig
from ..packages import (FLOAT16_MANTISSA_BITS, DataSource, ModelCard, Package, PackageError, as_stored, find_package,
                        load_package, write_package)
from ..services import DEFAULT_LENGTH_PENALTY
from ..tokenizer import Tokenizer, TokenizerConfig
from . import backtranslation

# Licence of a corpus's rows when the file has no per-row license column.
CORPUS_LICENSES = {"en-fr": ("tatoeba", "CC-BY-2.0-FR")}
NON_COMMERCIAL = "CC-BY-NC-SA-4.0"
ORIGIN_NOTES = {
    "tatoeba": "Tatoeba sentence pairs (via ManyThings for en-fr)",
    "kss-kosp2e": "KSS transcripts joined with kosp2e English translations; non-commercial use only",
    "jhe": "jungyeul/korean-parallel-corpora, JHE",
    "news": "jungyeul/korean-parallel-corpora, news dev/test",
}

TOKENIZER_CHOICE = (
    "Separate SentencePiece models for the source and the target language, each trained on its own side "
    "of the training split. The languages use different scripts or spellings (Hangul vs Latin; French "
    "accents), so a joint vocabulary would spend its budget on pieces one side never uses; with separate "
    "models each language gets a vocabulary sized for it (Korean with character_coverage 0.9995), the "
    "output softmax covers target pieces only (a smaller matrix: faster beam search), and names or numbers "
    "that a joint vocabulary would copy are handled by byte fallback and unknown-piece replacement."
)


@dataclass(frozen=True)
class TranslationTrainConfig:
    """Everything a translation run needs; saved in the package as ``config.yaml``.

    source / target: language codes (columns of the corpus table).
    corpus: a corpus name of :data:`nlpcore.data.CORPORA` (``en-fr``, ``ko-en``) or a file.
    exclude_licenses: rows with these licenses are not used (e.g. ``CC-BY-NC-SA-4.0``
        for a commercially usable model).
    normalize_text: repair both sides before anything else: HTML entities
        unescaped (``&#8212;``), quotes decoded from CP949 mojibake (``¡¯``)
        and news datelines (``TOKYO, Japan (CNN) — ``), which the other
        language does not carry, dropped (see :func:`normalize_text`).
    validation_fraction / split_salt: the hash split on the source sentence.
    split_language: the language whose sentence the split hashes ('': the
        source's). The two directions of a corpus that name the same one
        (``ko`` for ko→en and en→ko) hold out the same pairs, so either can
        rerank the other (``channel_model``) without having trained on the
        pairs it is scored on.
    extra_corpora: back-translated tables (written by ``nlpcore
        backtranslate``: a column per language, ``source`` and ``license``
        naming each row's origin and license, a ``.json`` record beside
        it), for the training side only. A pair whose source or target
        sentence is in the validation split is left out, so no validation
        sentence leaks in through the other side.
    tag_extra_corpora: tagged back-translation (Caswell et al. 2019): each
        extra pair's machine-made source starts with a tag
        (:data:`nlpcore.train.backtranslation.TAG`), so the model learns what
        real input looks like apart from the synthetic; input at translation
        time carries no tag.
    subword_sampling: when > 0, subword regularization (Kudo 2018): the
        training sentences of ``subword_sampling_sides`` are segmented anew
        every epoch, drawn from the SentencePiece lattice with this smoothing
        alpha, so the model sees many segmentations of each sentence;
        validation and translation use the best one. Smaller is more
        fragmented: on ko-en, 0.1 makes the English 1.66 times as many pieces
        as the best segmentation, 0.3 1.08 times, 0.5 1.03 times. 0 keeps the
        best segmentation throughout.
    max_train_pairs: 0 for all; a number draws that many pairs (quick runs).
    max_validation_pairs: 0 for all; caps the beam-search evaluation.
    source_tokenizer / target_tokenizer: the two SentencePiece models.
    batch_size: most pairs per batch; max_tokens: most padded tokens per batch (0 = no cap;
        ignored under JAX, which wants few distinct batch shapes).
    pad_multiple: batch widths are rounded up to a multiple of this (0 = the
        backend's choice: 16 under JAX, which compiles its train step once per
        batch shape, 1 otherwise). A GPU run wants larger (32: a handful of shapes).
    learning_rate, lr_decay, min_learning_rate: Adam's rate, multiplied by
        ``lr_decay`` whenever the validation loss does not improve.
    clip_global_norm: gradient clipping by global norm; label_smoothing: ε.
    patience: epochs without validation-loss improvement before stopping.
    time_budget_minutes: when > 0, each model trains for at most this long
        (stopping at a batch boundary; that epoch is still validated), its
        learning rate annealed on a cosine over the budget instead of decayed
        on plateaus. Sizes a run to the machine: the same config fits an
        afternoon on a laptop or a few minutes on a GPU.
    beam_size, length_penalty: how the validation split is translated for BLEU;
        the length penalty is also the package's default at translation time.
    channel_model, channel_weight: a package of the reverse direction (e.g.
        ``translate-en-ko`` for ko→en) and its weight for noisy-channel
        reranking of the beam's hypotheses (see :class:`nlpcore.translation.TranslationModel`);
        the package's default at translation time, and the validation split is
        translated with it. Empty / 0: no reranking. The channel must not
        have trained on this run's validation pairs (:func:`channel_seen`):
        it would favour the hypotheses closest to their references, and the
        scores would overstate what reranking does for new text.
        channel_candidates: how many
        of the beam's best hypotheses are reranked and can be returned (0: all;
        each costs a pass of the channel model). channel_max_source: only
        sources of at most this many pieces are reranked (0: any length).
    sentence_input: the training sentences are written as sentences (a
        capital first letter, final punctuation), so the service reads input
        that is not (text in capitals, a lower-case first letter, no final
        punctuation) as such a sentence (:func:`nlpcore.translation.paragraph_parts`);
        false: input is read as it is.
    weights_dtype: how the package stores weights (``float16`` halves it); the
        validation scores are measured with the weights rounded to it.
    mantissa_bits: float16 weights keep this many of their 10 mantissa bits
        (fewer: a smaller package, see :func:`nlpcore.packages.round_mantissa`).
    average_checkpoints: when above 1, the weights of that many epochs with
        the lowest validation loss are kept and averaged at the end
        (checkpoint averaging); the average ships when its validation loss is
        lower than the best epoch's. The card records either way.
    compare_attention: also train the other attention type and ship the better
        (Luong vs Bahdanau, both scored on the validation split, in the card).
    compare_pairs / compare_epochs: when set (> 0 and below the full budget),
        the two types are compared on that many training pairs and epochs
        first, and only the winner is then trained on the full budget.
    init_from: a translation package (installed name or folder) to start from,
        trained on a larger corpus with the same source or target language
        (e.g. ``translate-fr-en`` for ko→en). Its architecture is kept (this
        run's ``dropout`` applies); the shared language keeps its tokenizer and
        embedding, the other language gets its own tokenizer and a fresh
        embedding, and every other weight (encoder, attention, decoder) is
        copied. Its training data is listed in the new card and counts
        towards the new model's license.
    """

    name: str = "translate-en-fr"
    source: str = "en"
    target: str = "fr"
    description: str = ""
    license: str = ""
    corpus: str = "en-fr"
    exclude_licenses: tuple[str, ...] = ()
    normalize_text: bool = False
    extra_corpora: tuple[str, ...] = ()
    tag_extra_corpora: bool = False
    validation_fraction: float = 0.05
    split_salt: str = "malbeot"
    split_language: str = ""
    subword_sampling: float = 0.0
    subword_sampling_sides: tuple[str, ...] = ("source", "target")
    max_train_pairs: int = 0
    max_validation_pairs: int = 0
    source_tokenizer: TokenizerConfig = TokenizerConfig(vocab_size=8000, character_coverage=1.0)
    target_tokenizer: TokenizerConfig = TokenizerConfig(vocab_size=8000, character_coverage=1.0)
    model: Seq2SeqConfig = Seq2SeqConfig()
    batch_size: int = 64
    max_tokens: int = 3000
    pad_multiple: int = 0
    epochs: int = 15
    learning_rate: float = 1e-3
    lr_decay: float = 0.5
    min_learning_rate: float = 3e-5
    clip_global_norm: float = 5.0
    label_smoothing: float = 0.1
    patience: int = 3
    time_budget_minutes: float = 0.0
    seed: int = 42
    beam_size: int = 5
    length_penalty: float = DEFAULT_LENGTH_PENALTY
    channel_model: str = ""
    channel_weight: float = 0.0
    channel_candidates: int = 0
    channel_max_source: int = 0
    sentence_input: bool = True
    weights_dtype: str = "float16"
    mantissa_bits: int = FLOAT16_MANTISSA_BITS
    average_checkpoints: int = 0
    compare_attention: bool = False
    compare_pairs: int = 0
    compare_epochs: int = 0
    init_from: str = ""
    output: str = "runs/translate-en-fr/package"
    run_dir: str = "runs/translate-en-fr"

    def __post_init__(self):
        if self.split_language not in ("", self.source, self.target):
            raise ValueError(f"split_language must be the source or the target language "
                             f"({self.source} or {self.target}), not {self.split_language!r}")
        if self.channel_weight < 0:
            raise ValueError(f"channel_weight must be 0 or more, not {self.channel_weight}")
        if self.channel_candidates < 0 or self.channel_max_source < 0:
            raise ValueError("channel_candidates and channel_max_source must be 0 (no limit) or more")
        if self.weights_dtype not in ("float32", "float16"):  # checked before hours of training, not after
            raise ValueError(f"weights_dtype must be float32 or float16, not {self.weights_dtype!r}")
        if not 1 <= self.mantissa_bits <= FLOAT16_MANTISSA_BITS:
            raise ValueError(f"mantissa_bits must be 1 to {FLOAT16_MANTISSA_BITS}, not {self.mantissa_bits}")
        if not 0.0 <= self.subword_sampling <= 1.0:
            raise ValueError(f"subword_sampling must be 0 (off) to 1, not {self.subword_sampling}")
        if not set(self.subword_sampling_sides) <= {"source", "target"}:
            raise ValueError(f"subword_sampling_sides may name source and target, not "
                             f"{list(self.subword_sampling_sides)}")
        if self.init_from and self.compare_attention:
            raise ValueError("compare_attention trains both attention types from scratch; "
                             "a run with init_from keeps the attention of the package it starts from")


# ====================================================================== data
# Quotes of CP949 text read as Latin-1, as in part of the ko-en news rows.
MOJIBAKE = {"¡¯": "’", "¡®": "‘", "¡°": "“", "¡±": "”", "¡¦": "…"}
DATELINE = re.compile(r"^(?:[A-Z][\w.'-]*(?:[ ,]+[A-Z][\w.'-]*)*,? )?\(CNN\)\s*(?:—|--|-)?\s*")


def normalize_text(text: str) -> str:
    """Unescape HTML entities, repair mojibake quotes, drop a leading news dateline."""
    text = html.unescape(text)
    for broken, fixed in MOJIBAKE.items():
        text = text.replace(broken, fixed)
    return DATELINE.sub("", text).strip()


def pair_key(text: str) -> str:
    """What the split hashes: the sentence with its spacing and case normalised."""
    return " ".join(text.lower().split())


def row_license(corpus: str, pair: corpora.Pair) -> tuple[str, str]:
    """(origin, license) of a row, from its own columns or the corpus default."""
    if pair.license:
        return pair.origin or corpus, pair.license
    return CORPUS_LICENSES.get(corpus, (corpus, ""))


def split_side(config: TranslationTrainConfig) -> str:
    """The side of a pair (``source`` or ``target``) whose sentence the split hashes."""
    return "target" if config.split_language == config.target else "source"


def in_validation(config: TranslationTrainConfig, pair: corpora.Pair) -> bool:
    """Whether a pair of the config's corpus belongs to its validation split."""
    return corpora.is_validation(pair_key(getattr(pair, split_side(config))), config.validation_fraction,
                                 config.split_salt)


def split_description(config: TranslationTrainConfig) -> str:
    """How the validation split was drawn, for cards and evaluation records."""
    side = "source" if split_side(config) == "source" else f"target ({config.target})"
    return f"{config.validation_fraction:.0%} hash split of {config.corpus} on the {side} sentence"


def load_pairs(config: TranslationTrainConfig, extras: bool = True):
    """(train pairs, validation pairs, {(origin, license): rows used for training}).
    ``extras=False`` leaves the extra corpora out (the validation split is the
    same without them, and they may not be on this machine)."""
    train, validation, seen = [], [], set()
    used: dict[tuple[str, str], int] = {}
    excluded = set(config.exclude_licenses)

    def rows(corpus: str):
        """(pair, its key) of a table's rows that are kept: normalised, licence allowed, not seen before."""
        for pair in corpora.read_parallel(corpora.corpus_path(corpus), config.source, config.target):
            if config.normalize_text:
                pair = dataclasses.replace(pair, source=normalize_text(pair.source),
                                           target=normalize_text(pair.target))
                if not (pair.source and pair.target):
                    continue
            key = (pair_key(pair.source), pair_key(pair.target))
            if row_license(corpus, pair)[1] in excluded or key in seen:
                continue
            seen.add(key)
            yield pair, key

    for pair, _ in rows(config.corpus):
        if in_validation(config, pair):
            validation.append(pair)
        else:
            train.append(pair)
    held_out = {side: {pair_key(getattr(p, side)) for p in validation} for side in ("source", "target")}
    for extra in config.extra_corpora if extras else ():
        for pair, (source, target) in rows(extra):
            if not pair.license:
                raise corpora.CorpusError(extra, "an extra corpus needs source and license columns "
                                                 "(each row's origin and license go into the card)")
            if source not in held_out["source"] and target not in held_out["target"]:
                train.append(dataclasses.replace(pair, source=backtranslation.tagged(pair.source))
                             if config.tag_extra_corpora else pair)
    rng = random.Random(config.seed)
    if config.max_train_pairs and len(train) > config.max_train_pairs:
        train = rng.sample(train, config.max_train_pairs)
    if config.max_validation_pairs and len(validation) > config.max_validation_pairs:
        validation = random.Random(config.seed + 1).sample(validation, config.max_validation_pairs)
    for pair in train:
        origin, license_ = row_license(config.corpus, pair)
        used[(origin, license_)] = used.get((origin, license_), 0) + 1
    return train, validation, used


def channel_seen(config: TranslationTrainConfig, channel: TranslationTrainConfig,
                 validation=None) -> tuple[int, int]:
    """(how many of ``config``'s validation pairs the reverse-direction model of
    config ``channel`` was trained on, how many there are). Its corpus's pairs
    are checked, as :meth:`Transfer.seen` does; ``validation``: those pairs,
    when the caller has read them already."""
    if (channel.source, channel.target) != (config.target, config.source):
        raise ValueError(f"the channel model translates {channel.source}→{channel.target}, "
                         f"not {config.target}→{config.source}")

    def key(text: str) -> str:  # one spelling whether or not a config normalises its text
        return pair_key(normalize_text(text))

    if validation is None:
        _, validation, _ = load_pairs(config, extras=False)
    trained, _, _ = load_pairs(channel, extras=False)
    known = {(key(p.target), key(p.source)) for p in trained}
    return sum((key(p.source), key(p.target)) in known for p in validation), len(validation)


def check_channel(config: TranslationTrainConfig) -> None:
    """Refuse a config whose reranking channel was trained on its validation
    pairs (its scores would reward hypotheses the channel has seen); nothing
    to check without a channel, a weight, or the channel installed."""
    if not (config.channel_model and config.channel_weight):
        return
    try:
        channel = load_package(find_package(config.channel_model)).config(TranslationTrainConfig)
    except PackageError:
        return  # translated without reranking (TranslationModel.load_channel warns)
    seen, total = channel_seen(config, channel)
    if seen:
        raise ValueError(f"channel_model {config.channel_model} was trained on {seen:,} of the {total:,} "
                         f"validation pairs: reranking would be scored on pairs it has seen. Train both "
                         f"directions on one split (the same split_language) or set channel_weight: 0")


def extra_records(config: TranslationTrainConfig) -> list[dict]:
    """What each of the config's extra corpora is: its back-translation record
    (see :mod:`nlpcore.train.backtranslation`), with its path, and ``tagged``
    when the config tags its sources."""
    records = []
    for extra in config.extra_corpora:
        record = backtranslation.sidecar(extra)
        if not record.is_file():
            raise corpora.CorpusError(extra, f"no {record.name} beside it: an extra corpus is a table written "
                                             "by nlpcore backtranslate, with its record")
        records.append({"path": str(extra), **json.loads(record.read_text(encoding="utf-8")),
                        **({"tagged": True} if config.tag_extra_corpora else {})})
    return records


# How a card's data note starts for data of an init_from package.
INHERITED_NOTE = re.compile(r"^(?:through \S+ \(init_from\): )+")


def listed_once(sources: tuple[DataSource, ...]) -> tuple[DataSource, ...]:
    """The card's data, each source once, first listing kept: a run that
    continues a package of its own corpus trained on the same rows again.

    Two listings are one source when name, license and description agree (a
    note's ``through <package> (init_from):`` start aside): the same corpus, or
    a table back-translated from the same corpus by the same model version,
    whose sentences all come from one seeded draw, so the smaller is in the
    larger. The most rows are kept."""
    merged: dict[tuple[str, str, str], DataSource] = {}
    for source in sources:
        key = (source.name, source.license, INHERITED_NOTE.sub("", source.notes))
        kept = merged.setdefault(key, source)
        if source.rows > kept.rows:
            merged[key] = dataclasses.replace(kept, rows=source.rows)
    return tuple(merged.values())


def resulting_license(used: dict[tuple[str, str], int]) -> str:
    """The license a model trained on these rows carries (the most restrictive of its data)."""
    licenses = {license_ for (_, license_), n in used.items() if n}
    if NON_COMMERCIAL in licenses:
        return "CC-BY-NC-SA-4.0 (non-commercial use only: trained on CC BY-NC-SA 4.0 rows)"
    if "CC-BY-SA-3.0" in licenses:
        return "CC-BY-SA-3.0 (share-alike; attribution to Tatoeba contributors, CC-BY 2.0 FR)" \
            if "CC-BY-2.0-FR" in licenses else "CC-BY-SA-3.0"
    return "CC-BY-2.0-FR" if licenses == {"CC-BY-2.0-FR"} else ", ".join(sorted(licenses))


def _tokenizer(path: Path, texts, config: TokenizerConfig, resume: bool) -> Tokenizer:
    if resume and path.is_file():
        return Tokenizer.load(path)
    tokenizer = Tokenizer.train(texts, config)
    tokenizer.save(path)
    return tokenizer


def encode_pairs(pairs, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer):
    return (source_tokenizer.encode([p.source for p in pairs]), target_tokenizer.encode([p.target for p in pairs]))


def subword_sampler(config: TranslationTrainConfig, pairs, source_tokenizer: Tokenizer,
                    target_tokenizer: Tokenizer, sources, targets):
    """``segment(epoch)`` for :class:`ParallelBatches`: ``pairs`` segmented
    anew (by sampling) on the sides ``config`` names, the other side kept as
    ``sources`` / ``targets``; None when subword sampling is off."""
    if config.subword_sampling <= 0 or not config.subword_sampling_sides:
        return None
    sides = {"source": (source_tokenizer, [p.source for p in pairs], sources),
             "target": (target_tokenizer, [p.target for p in pairs], targets)}

    def segment(epoch: int) -> tuple[list, list]:
        return tuple(tokenizer.sample(texts, config.subword_sampling, config.seed * 1000 + epoch)
                     if side in config.subword_sampling_sides else ids
                     for side, (tokenizer, texts, ids) in sides.items())

    return segment


# ====================================================================== training
def fit_model(config: TranslationTrainConfig, model_config: Seq2SeqConfig, train_data, val_data, run_dir: Path,
              resume: bool, verbose: int = 2, start_from: "Transfer | None" = None):
    """Train one model in ``run_dir`` (resumable; from ``start_from``'s weights
    when given); returns (model, history dict, seconds, epochs run, checkpoint
    average record or None)."""
    import keras

    from ..models.seq2seq import build_seq2seq, compile_seq2seq, transfer_weights
    from .common import EpochSnapshots, TimeBudget, prepare_run_dir, standard_callbacks

    run_dir = prepare_run_dir(run_dir, resume)
    done = run_dir / "final.weights.h5"
    summary_path = run_dir / "summary.json"
    keras.utils.set_random_seed(config.seed)
    model = build_seq2seq(model_config, name=config.name.replace("-", "_"))
    if resume and done.is_file() and summary_path.is_file():  # this model finished before the interruption
        model.load_weights(done)  # before compiling: the file holds no optimizer state
        summary = json.loads(summary_path.read_text())
        return model, summary["history"], summary["seconds"], summary["epochs"], summary.get("checkpoint_average")
    if start_from is not None:  # a resumed run then overwrites these from its backup
        transfer_weights(start_from.package.load_model(), model, start_from.fresh)
    compile_seq2seq(model, config.learning_rate, config.clip_global_norm, config.label_smoothing)
    started = time.time()
    callbacks = standard_callbacks(run_dir, config.patience, monitor="val_loss")
    snapshots = None
    if config.average_checkpoints > 1:  # prepare_run_dir cleared a fresh run's snapshots
        snapshots = EpochSnapshots(run_dir / "snapshots", config.average_checkpoints)
        callbacks.append(snapshots)
    if config.time_budget_minutes > 0:
        callbacks.append(TimeBudget(config.time_budget_minutes, config.learning_rate, config.min_learning_rate))
    else:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.lr_decay, patience=0, min_lr=config.min_learning_rate,
            verbose=verbose))
    history = model.fit(train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks,
                        verbose=verbose)
    seconds = time.time() - started
    hist = _csv_history(run_dir / "history.csv") or {k: [float(v) for v in vs] for k, vs in history.history.items()}
    averaged = average_checkpoints(model, snapshots, val_data, min(hist["val_loss"])) if snapshots else None
    finished = build_seq2seq(model_config, name=model.name)
    finished.set_weights(model.get_weights())
    finished.save_weights(done)
    summary_path.write_text(json.dumps({"history": hist, "seconds": seconds, "epochs": len(hist.get("loss", [])),
                                        "checkpoint_average": averaged}))
    return model, hist, seconds, len(hist.get("loss", [])), averaged


def average_checkpoints(model, snapshots, val_data, best_loss: float) -> dict | None:
    """Average the epochs ``snapshots`` kept and validate the average; ``model``
    (holding the best epoch's weights) takes it when its validation loss is
    lower. Returns the record for the card, or None with fewer than two epochs."""
    from .common import averaged_weights

    kept = snapshots.kept()
    if len(kept) < 2:
        return None
    best = model.get_weights()
    model.set_weights(averaged_weights(model, [snapshots.folder / name for name in kept]))
    scores = model.evaluate(val_data, verbose=0, return_dict=True)
    adopted = scores["loss"] < best_loss
    if not adopted:
        model.set_weights(best)
    record = {"epochs": [snapshots.epoch_of(name) for name in kept],
              "epoch_val_losses": [round(v, 4) for v in kept.values()],
              "val_loss": round(float(scores["loss"]), 4),
              "val_accuracy": round(float(scores.get("accuracy", float("nan"))), 4),
              "adopted": bool(adopted)}
    print(json.dumps({"checkpoint_average": record}), flush=True)
    return record


class ValidationSubsets(NamedTuple):
    """Validation pairs to score apart: those whose ``side`` sentence ``package``
    was trained on (``seen by <package>``) and the others (``unseen``)."""

    package: str
    side: str
    groups: dict[str, list[bool]]


@dataclass(frozen=True)
class Transfer:
    """A run's starting point (``init_from``): the package, the sides whose language
    it shares, and the layers that start fresh (the other language's vocabulary)."""

    package: Package
    config: TranslationTrainConfig
    shared: tuple[str, ...]
    fresh: tuple[str, ...]

    @classmethod
    def open(cls, config: TranslationTrainConfig) -> "Transfer | None":
        from ..models.seq2seq import fresh_layers

        if not config.init_from:
            return None
        package = load_package(find_package(config.init_from))
        origin = package.config(TranslationTrainConfig)
        shared = tuple(side for side, a, b in (("source", origin.source, config.source),
                                               ("target", origin.target, config.target)) if a == b)
        if not shared:
            raise ValueError(f"init_from {package.card.name} translates {origin.source}→{origin.target}: it shares "
                             f"neither the source nor the target language of {config.source}→{config.target}")
        fresh = fresh_layers(origin.model, "source" not in shared, "target" not in shared)
        return cls(package, origin, shared, fresh)

    def seen(self, pairs) -> list[bool]:
        """Per pair: is its sentence in the shared language one this package was
        trained on? (Such validation pairs are easier: its decoder or encoder knows them.)
        Its corpus's pairs are checked; back-translated tables hold none of its
        validation sentences and need not be on this machine."""
        trained, _, _ = load_pairs(self.config, extras=False)
        side = self.shared[0]
        known = {pair_key(getattr(p, side)) for p in trained}
        return [pair_key(getattr(p, side)) in known for p in pairs]

    def subsets(self, pairs) -> ValidationSubsets | None:
        """The validation pairs to score apart: those whose sentence in the
        shared language this package was trained on (``seen``). A run that
        continues the package on its own corpus has none; it scores again the
        subsets of the package's card, seen by an earlier package of another
        corpus, when that one is installed."""
        name, side, seen = self.package.card.name, self.shared[0], self.seen(pairs)
        if not any(seen):
            name = self.subsets_package()
            if not name:
                return None
            try:
                earlier = Transfer.open(dataclasses.replace(self.config, init_from=name, compare_attention=False))
                side, seen = earlier.shared[0], earlier.seen(pairs)
            except (PackageError, ValueError, OSError):  # not installed, sharing no language, or its corpus is missing
                return None
            if not any(seen):
                return None
        return ValidationSubsets(name, side, {f"seen by {name}": seen, "unseen": [not f for f in seen]})

    def subsets_package(self) -> str:
        """The package this package's card scored validation subsets against ('' if none)."""
        extra = self.package.card.extra
        for scores in (extra.get("validation_subsets"), extra.get("initialized_from", {}).get("validation_subsets")):
            for key in scores or ():
                if key.startswith("seen by "):
                    return key[len("seen by "):]
        return ""

    def card_entry(self, subsets: dict | None = None) -> dict:
        """The new card's ``initialized_from``: the package, what was kept, and
        the validation scores of the ``seen`` / unseen subsets when given."""
        card = self.package.card
        entry = {"package": card.name, "version": card.version, "metrics": card.metrics,
                 "shared": list(self.shared), "fresh_layers": list(self.fresh),
                 "epochs_run": card.extra.get("epochs_run"), "train_seconds": card.extra.get("train_seconds")}
        if subsets:
            entry["validation_subsets"] = subsets
            entry["subsets_note"] = (f"validation pairs whose {self.shared[0]} sentence {card.name} was trained on "
                                     "(with another language on the other side) are easier; the unseen subset "
                                     "measures the transfer alone")
        return entry

    def card_fields(self, subsets: ValidationSubsets | None, scores: dict, config: TranslationTrainConfig) -> dict:
        """The new card's extra fields about this start: ``initialized_from``, with
        the subsets' scores when they are this package's; for a continuation,
        those of the earlier package (``subsets``) as ``validation_subsets``."""
        if subsets is None or subsets.package == self.package.card.name:
            return {"initialized_from": self.card_entry(scores)}
        fields = {"initialized_from": self.card_entry()}
        if scores:
            fields.update(validation_subsets=scores,
                          validation_subsets_note=subsets_note(subsets, getattr(config, subsets.side), config.corpus))
        return fields

    def card_data(self) -> tuple[DataSource, ...]:
        """The package's training data, which shaped the new weights too. Data
        that came to it through an ``init_from`` of its own keeps that one note."""
        card = self.package.card
        return tuple(d if INHERITED_NOTE.match(d.notes) else
                     dataclasses.replace(d, notes=f"through {card.name} (init_from): {d.notes}") for d in card.data)

    def tokenizer_note(self) -> str:
        sides = " and ".join(f"the {side} model" for side in self.shared).capitalize()
        verb = "is" if len(self.shared) == 1 else "are"
        return f" {sides} {verb} {self.package.card.name}'s, kept with the weights this model started from."


def subsets_note(subsets: ValidationSubsets, language: str, corpus: str) -> str:
    """The card's ``validation_subsets_note`` of a run that continues a package
    on its own corpus, the subsets being those seen by an earlier package."""
    return (f"validation pairs whose {subsets.side} sentence ({language}) {subsets.package} was trained on, "
            f"with another language on the other side, are easier; {subsets.package} is where these weights "
            f"started, before {corpus}, so the unseen subset measures what the {corpus} data taught")


def _csv_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch history CSVLogger wrote (complete across resumed runs), by column."""
    import csv

    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in (rows[0] if rows else {}) if c != "epoch"]
    return {c: [float(r[c]) for r in rows if r.get(c) not in (None, "")] for c in columns}


def evaluate_model(model, model_config: Seq2SeqConfig, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer,
                   pairs, config: TranslationTrainConfig, samples: int = 20,
                   subsets: dict[str, list[bool]] | None = None) -> dict:
    """Beam-search the validation pairs (reranked as the config says, when its
    channel package is installed); BLEU, chrF, speed and sample translations
    (and the scores of each named subset of the pairs, a flag per pair)."""
    from ..services import TranslateOptions
    from ..translation import TranslationModel

    runner = TranslationModel(model, model_config, source_tokenizer, target_tokenizer, config.name,
                              config.source, config.target, **TranslationModel.channel_settings(config))
    options = TranslateOptions(beam_size=config.beam_size, length_penalty=config.length_penalty)
    scores, hypotheses = runner.evaluate([p.source for p in pairs], [p.target for p in pairs], options)
    return {
        **scores,
        "by_origin": scores_by_origin(pairs, hypotheses, config.corpus),
        "subsets": grouped_scores(pairs, hypotheses, subsets or {}),
        "samples": [{"source": p.source, "reference": p.target, "translation": h}
                    for p, h in list(zip(pairs, hypotheses))[:samples]],
    }


def grouped_scores(pairs, hypotheses, groups: dict[str, list[bool]]) -> dict[str, dict]:
    """BLEU and chrF (sacrebleu) of each named group of pairs (a flag per pair); empty groups are left out."""
    from ..evaluate import bleu_chrf

    scores = {}
    for name, flags in groups.items():
        if any(flags):
            chosen = [(h, p.target) for h, p, f in zip(hypotheses, pairs, flags) if f]
            scores[name] = {k: round(v, 2) if isinstance(v, float) else v
                            for k, v in bleu_chrf(*map(list, zip(*chosen))).items()}
    return scores


def scores_by_origin(pairs, hypotheses, corpus: str) -> dict[str, dict]:
    """BLEU and chrF of each source of a mixed corpus ({} when it has one):
    a Korean news sentence and a textbook one are not equally hard."""
    origins = [row_license(corpus, p)[0] for p in pairs]
    if len(set(origins)) < 2:
        return {}
    return grouped_scores(pairs, hypotheses, {o: [x == o for x in origins] for o in sorted(set(origins))})


def attention_comparison(results: dict[str, dict], pairs: int, epochs: int, note: str) -> dict:
    """A card's ``attention_comparison``: each attention type's validation figures
    (BLEU, chrF, token accuracy, loss, epochs, training seconds) and the budget they had."""
    fields = ("bleu", "chrf", "token_accuracy", "loss", "epochs", "train_seconds")
    comparison: dict = {a: {k: r[k] for k in fields} for a, r in results.items()}
    comparison["budget"] = {"pairs": pairs, "epochs": epochs, "note": note}
    return comparison


def train(config: TranslationTrainConfig, resume: bool = False, output: str | None = None, verbose: int = 2):
    """Train, evaluate on the validation split and write the package. Returns the Package."""
    from ..models.seq2seq import build_seq2seq
    from .common import ParallelBatches

    started = time.time()
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_channel(config)
    transfer = Transfer.open(config)
    extras = extra_records(config)
    train_pairs, val_pairs, used = load_pairs(config)
    print(f"pairs: {len(train_pairs):,} train, {len(val_pairs):,} validation; rows used: "
          + ", ".join(f"{o} ({l}) {n:,}" for (o, l), n in used.items()), flush=True)

    def side_tokenizer(side: str, texts) -> Tokenizer:
        if transfer is not None and side in transfer.shared:
            tokenizer = transfer.package.tokenizer(side)
            tokenizer.save(run_dir / f"{side}.model")
            return tokenizer
        return _tokenizer(run_dir / f"{side}.model", texts, getattr(config, f"{side}_tokenizer"), resume)

    source_tokenizer = side_tokenizer("source", (p.source for p in train_pairs))
    target_tokenizer = side_tokenizer("target", (p.target for p in train_pairs))
    model_config, subsets = config.model, None
    if transfer is not None:  # the package's architecture and shared tokenizers, this run's dropout
        model_config = dataclasses.replace(transfer.config.model, dropout=config.model.dropout)
        config = dataclasses.replace(config, **{f"{side}_tokenizer": getattr(transfer.config, f"{side}_tokenizer")
                                                for side in transfer.shared})
        print(json.dumps({"initialized_from": transfer.card_entry()}, ensure_ascii=False), flush=True)
        subsets = transfer.subsets(val_pairs)
    model_config = dataclasses.replace(model_config, src_vocab_size=source_tokenizer.vocab_size,
                                       tgt_vocab_size=target_tokenizer.vocab_size)

    x_src, x_tgt = encode_pairs(train_pairs, source_tokenizer, target_tokenizer)
    keep = [i for i, (s, t) in enumerate(zip(x_src, x_tgt))
            if len(s) <= model_config.max_source_length and len(t) < model_config.max_target_length]
    dropped = len(x_src) - len(keep)
    x_src, x_tgt = [x_src[i] for i in keep], [x_tgt[i] for i in keep]
    v_src, v_tgt = encode_pairs(val_pairs, source_tokenizer, target_tokenizer)
    pad, max_tokens = batch_shapes(config, _backend())
    segment = subword_sampler(config, [train_pairs[i] for i in keep], source_tokenizer, target_tokenizer,
                              x_src, x_tgt)
    train_data = ParallelBatches(x_src, x_tgt, config.batch_size, model_config.max_source_length,
                                 model_config.max_target_length, max_tokens, True, config.seed, pad, segment)
    val_data = ParallelBatches(v_src, v_tgt, config.batch_size, model_config.max_source_length,
                               model_config.max_target_length, max_tokens, False, 0, pad)
    print(f"training pairs after the length limits: {len(x_src):,} ({dropped:,} longer ones dropped); "
          f"{len(train_data):,} batches per epoch", flush=True)

    def run(attention: str, folder: str, data, epochs: int) -> dict:
        variant_config = dataclasses.replace(model_config, attention=attention)
        print(f"--- {folder}: {attention} attention, {data.pairs:,} pairs, up to {epochs} epochs", flush=True)
        model, history, seconds, epochs_run, averaged = fit_model(
            dataclasses.replace(config, epochs=epochs), variant_config, data, val_data, run_dir / folder, resume,
            verbose, transfer)
        # evaluate what ships
        model.set_weights(as_stored(model.get_weights(), config.weights_dtype, config.mantissa_bits))
        evaluation = evaluate_model(model, variant_config, source_tokenizer, target_tokenizer, val_pairs, config,
                                    subsets=subsets.groups if subsets else None)
        best = int(np.argmin(history["val_loss"])) if history.get("val_loss") else -1
        summary = {"bleu": evaluation["bleu"], "chrf": evaluation["chrf"],
                   "token_accuracy": round(history["val_accuracy"][best], 4) if best >= 0 else None,
                   "loss": round(history["val_loss"][best], 4) if best >= 0 else None}
        if averaged and averaged["adopted"]:
            summary.update(token_accuracy=averaged["val_accuracy"], loss=averaged["val_loss"])
        result = {
            "model": model, "config": variant_config, "history": history, "train_seconds": round(seconds, 1),
            "epochs": epochs_run, "evaluation": evaluation, "summary": summary, "checkpoint_average": averaged,
        }
        print(json.dumps({"attention": attention, **result["summary"], "epochs": epochs_run,
                          "train_seconds": round(seconds)}), flush=True)
        return result

    attentions = [model_config.attention]
    if config.compare_attention:
        attentions.append("bahdanau" if model_config.attention == "luong" else "luong")
    reduced = config.compare_attention and (0 < config.compare_pairs < len(x_src)
                                            or 0 < config.compare_epochs < config.epochs)
    runs: dict[str, dict] = {}
    budget = {"pairs": len(x_src), "epochs": config.epochs}
    if reduced:  # compare on a smaller budget, then train the winner in full
        count = config.compare_pairs if 0 < config.compare_pairs < len(x_src) else len(x_src)
        subset = np.random.default_rng(config.seed).permutation(len(x_src))[:count]
        compare_data = ParallelBatches([x_src[i] for i in subset], [x_tgt[i] for i in subset], config.batch_size,
                                       model_config.max_source_length, model_config.max_target_length, max_tokens,
                                       True, config.seed, pad)
        budget = {"pairs": count, "epochs": config.compare_epochs or config.epochs}
        compared = {a: run(a, f"compare-{a}", compare_data, budget["epochs"]) for a in attentions}
        winner = max(compared, key=lambda a: (compared[a]["summary"]["bleu"], a == model_config.attention))
        runs[winner] = run(winner, winner, train_data, config.epochs)
    else:
        compared = runs = {a: run(a, a, train_data, config.epochs) for a in attentions}

    chosen = max(runs, key=lambda a: (runs[a]["summary"]["bleu"], a == model_config.attention))
    final = runs[chosen]
    split = f"validation ({split_description(config)}, {len(val_pairs):,} pairs, beam {config.beam_size})"
    extra_notes = {backtranslation.origin(r["corpus"]): backtranslation.notes(r, config.source) for r in extras}
    used_rows = tuple(DataSource(origin if origin in extra_notes else f"{config.corpus}:{origin}", rows=n,
                                 license=license_, notes=extra_notes.get(origin) or ORIGIN_NOTES.get(origin, ""))
                      for (origin, license_), n in sorted(used.items()))
    tokenizers, extra_transfer = TOKENIZER_CHOICE, {}
    if transfer is not None:  # its data is listed and counts towards the license
        init_data = transfer.card_data()
        used_rows = listed_once(used_rows + init_data)
        used = {**used, **{(d.name, d.license): d.rows for d in init_data}}
        tokenizers += transfer.tokenizer_note()
        extra_transfer = transfer.card_fields(subsets, final["evaluation"]["subsets"], config)
    license_ = config.license or resulting_license(used)
    comparison = attention_comparison(
        {a: {**r["summary"], "epochs": r["epochs"], "train_seconds": r["train_seconds"]} for a, r in compared.items()},
        budget["pairs"], budget["epochs"],
        f"one attention type, that of {transfer.package.card.name} (init_from)" if transfer is not None else
        ("same data, settings and validation split for each attention type"
         + ("; the winner was then trained on the full budget" if reduced else "")))
    card = ModelCard(
        name=config.name,
        task="translation",
        languages=(config.source, config.target),
        description=config.description or f"{config.source}→{config.target} BiLSTM encoder, LSTM decoder "
                                          f"with {chosen} attention, SentencePiece subwords",
        data=used_rows,
        license=license_,
        metrics={split: final["summary"]},
        extra={
            "source_language": config.source,
            "target_language": config.target,
            "attention": chosen,
            "attention_comparison": comparison,
            "tokenizers": tokenizers,
            "excluded_licenses": list(config.exclude_licenses),
            "epochs_run": final["epochs"],
            "train_seconds": final["train_seconds"],
            "total_seconds": round(time.time() - started, 1),
            "parameters": int(final["model"].count_params()),
            "training_pairs": len(x_src),
            **({"subword_sampling": {"alpha": config.subword_sampling,
                                     "sides": list(config.subword_sampling_sides)}} if segment else {}),
            **({"extra_corpora": extras} if extras else {}),
            **({"checkpoint_average": final["checkpoint_average"]} if final["checkpoint_average"] else {}),
            **extra_transfer,
            **({"validation_by_origin": final["evaluation"]["by_origin"]} if final["evaluation"]["by_origin"] else {}),
        },
    )
    shipped_config = dataclasses.replace(config, model=final["config"])
    shipped = build_seq2seq(final["config"], name=final["model"].name)  # uncompiled, loads on any backend
    shipped.set_weights(final["model"].get_weights())
    evaluation = {"split": split, "chosen": chosen,
                  "runs": {a: {"history": r["history"], "evaluation": r["evaluation"]} for a, r in runs.items()},
                  "comparison": {a: {"history": r["history"], "evaluation": r["evaluation"]}
                                 for a, r in compared.items()} if reduced else "the runs above"}
    package = write_package(
        output or config.output, card, shipped_config, {"model": shipped},
        {"source": source_tokenizer, "target": target_tokenizer},
        files={"evaluation.json": json.dumps(evaluation, indent=2, ensure_ascii=False).encode()},
        weights_dtype=config.weights_dtype, mantissa_bits=config.mantissa_bits,
    )
    print(json.dumps({"package": str(package.path), "attention": chosen, **final["summary"]}), flush=True)
    return package


def batch_shapes(config: TranslationTrainConfig, backend: str) -> tuple[int, int]:
    """(pad_multiple, max_tokens) of the training batches. JAX compiles the train
    step once per batch shape: fixed batch sizes (no token cap) and widths
    rounded up to multiples of 16 (or the config's ``pad_multiple``) keep that
    to a few dozen shapes."""
    if backend == "jax":
        return config.pad_multiple or 16, 0
    return config.pad_multiple or 1, config.max_tokens


def _backend() -> str:
    import keras

    return keras.backend.backend()
