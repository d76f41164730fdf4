"""Train a sentiment classifier and write its model package.

``nlpcore train sentiment --config configs/sentiment-ko.yaml``

The validation split is a fixed share of ``validation_corpus``, chosen by
hashing each review's text; reviews from any corpus whose text hashes into
that share are never trained on, so reviews duplicated between NSMC and its
raw crawl cannot leak from training into validation.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import data as corpora
from ..models.classifier import ClassifierConfig
from ..packages import DataSource, ModelCard, as_stored, write_package
from ..tokenizer import Tokenizer, TokenizerConfig
from ..services import LABELS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SentimentTrainConfig:
    """Everything a sentiment run needs; saved in the package as ``config.yaml``.

    corpora: corpus names from :data:`nlpcore.data.CORPORA` (``nsmc``,
        ``nsmc_raw`` for rating-labelled extra reviews, ``imdb``).
    validation_corpus / validation_fraction / split_salt: the hash split.
    max_train_examples: 0 for all; a small number for quick CPU runs.
    snippets_per_review: extra training examples per review made of one or two
        of its sentences (same label), so short inputs are in-distribution.
    balance_classes: weight the loss so both labels count equally (the raw
        NSMC crawl is 78 % positive; the validation split is balanced).
    lr_schedule: ``"constant"`` or ``"cosine"`` (decays to 5 % of
        ``learning_rate`` over ``epochs``).
    ensemble: members trained with seeds ``seed``, ``seed + 1``, …; their
        probabilities are averaged.
    weights_dtype: how the package stores weights (``float16`` halves it; the
        validation figures are measured with the stored, rounded weights).
    pretrain_corpora: texts (labels unused; the raw crawl's 5–8 ratings too)
        on which the embedding and BiLSTM are first trained as forward and
        backward language models for ``pretrain_epochs``, predicting the
        ``pretrain_vocab`` most frequent pieces (rarer ones share a class).
        Validation reviews are left out here too. Empty: no pretraining.
    """

    name: str = "sentiment-ko"
    languages: tuple[str, ...] = ("ko",)
    description: str = ""
    license: str = ""
    corpora: tuple[str, ...] = ("nsmc",)
    validation_corpus: str = "nsmc"
    validation_fraction: float = 0.1
    split_salt: str = "malbeot"
    max_train_examples: int = 0
    snippets_per_review: int = 0
    balance_classes: bool = True
    ensemble: int = 1
    weights_dtype: str = "float16"
    lr_schedule: str = "constant"
    pretrain_corpora: tuple[str, ...] = ()
    pretrain_epochs: int = 1
    pretrain_vocab: int = 8000
    pretrain_batch_size: int = 128
    pretrain_learning_rate: float = 2e-3
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ClassifierConfig = ClassifierConfig()
    batch_size: int = 128
    epochs: int = 4
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    patience: int = 1
    seed: int = 42
    output: str = "runs/sentiment-ko/package"
    run_dir: str = "runs/sentiment-ko"


def _key(text: str) -> str:
    return " ".join(text.split())


def read_corpus(name: str, unlabelled: bool = False):
    kind = corpora.CORPORA[name].kind if name in corpora.CORPORA else "labels"
    path = corpora.corpus_path(name)
    if name == "imdb":
        return corpora.read_imdb(path)
    if kind == "ratings":
        return corpora.read_nsmc_ratings(path, unlabelled=unlabelled)
    return corpora.read_nsmc(path)


def pretraining_texts(config: SentimentTrainConfig) -> tuple[list[str], dict[str, int]]:
    """(distinct texts of ``pretrain_corpora`` outside the validation share, texts per corpus)."""
    texts: dict[str, None] = {}
    used: dict[str, int] = {}
    for name in config.pretrain_corpora:
        before = len(texts)
        for example in read_corpus(name, unlabelled=True):
            key = _key(example.text)
            if key and not corpora.is_validation(key, config.validation_fraction, config.split_salt):
                texts.setdefault(example.text)
        used[name] = len(texts) - before
    return list(texts), used


def pretrain_encoder(config: SentimentTrainConfig, tokenizer: Tokenizer, texts: Sequence[str],
                     val_texts: Sequence[str], run_dir: Path, resume: bool, verbose: int = 2):
    """Train the embedding and BiLSTM as forward / backward language models.

    Returns (the encoder LM, {"history", "seconds"}); the weights are kept in
    ``run_dir`` after each run, so a resumed run does not pretrain again, or
    only runs the epochs it lacks (with a fresh optimizer state).
    """
    import keras

    from ..models.classifier import build_encoder_lm, clip
    from .common import EncoderLMBatches

    path, summary_path = run_dir / "pretrained.weights.h5", run_dir / "pretrained.json"
    model_config = config.model
    keras.utils.set_random_seed(config.seed)
    lm = build_encoder_lm(model_config, config.pretrain_vocab, name="encoder_lm")
    done, earlier = 0, {"history": {}, "seconds": 0.0}
    if resume and path.is_file() and summary_path.is_file():
        lm.load_weights(path)
        earlier = json.loads(summary_path.read_text())
        done = len(earlier["history"].get("loss", []))
        if done >= config.pretrain_epochs:
            return lm, earlier
    started = time.time()
    data = EncoderLMBatches([clip(model_config, ids) for ids in tokenizer.encode(list(texts))],
                            config.pretrain_batch_size, model_config.max_length, config.pretrain_vocab,
                            seed=config.seed, start_epoch=done)  # a resumed run: the shuffles of the epochs left
    val = EncoderLMBatches([clip(model_config, ids) for ids in tokenizer.encode(list(val_texts))], 512,
                           model_config.max_length, config.pretrain_vocab, shuffle=False)
    print(f"pretraining the encoder as language models: {len(texts):,} texts, {len(data):,} batches per epoch",
          flush=True)
    lm.compile(optimizer=keras.optimizers.Adam(config.pretrain_learning_rate, clipnorm=config.clipnorm),
               loss={k: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                     for k in ("next_piece", "previous_piece")})
    history = lm.fit(data, validation_data=val, epochs=config.pretrain_epochs, initial_epoch=done,
                     verbose=verbose)
    summary = {"history": {k: earlier["history"].get(k, []) + [round(float(v), 4) for v in vs]
                           for k, vs in history.history.items()},
               "seconds": round(earlier["seconds"] + time.time() - started, 1)}
    lm.save_weights(path)
    summary_path.write_text(json.dumps(summary))
    return lm, summary


def snippets(text: str, rng: np.random.Generator, count: int) -> list[str]:
    """Up to ``count`` short pieces of a review: one or two consecutive sentences."""
    sentences = [s for s in _SENTENCE_END.split(text) if len(s.split()) >= 3]
    if len(sentences) < 2:
        return []
    out = []
    for _ in range(count):
        start = int(rng.integers(len(sentences)))
        out.append(" ".join(sentences[start : start + int(rng.integers(1, 3))]))
    return out


def load_examples(config: SentimentTrainConfig) -> tuple[list[corpora.LabeledText], list[corpora.LabeledText], dict[str, int]]:
    """(train, validation, rows used per corpus)."""
    train: list[corpora.LabeledText] = []
    validation: list[corpora.LabeledText] = []
    validation_ids: set[str] = set()
    seen: set[tuple[str, int]] = set()
    used: dict[str, int] = {}
    rng = np.random.default_rng(config.seed)
    for name in [config.validation_corpus, *[c for c in config.corpora if c != config.validation_corpus]]:
        count = 0
        for example in read_corpus(name):
            key = _key(example.text)
            if corpora.is_validation(key, config.validation_fraction, config.split_salt):
                if name == config.validation_corpus:
                    validation.append(example)
                    validation_ids.add(example.id)
                continue
            if name != config.validation_corpus and example.id in validation_ids:
                continue
            if (key, example.label) in seen:
                continue
            seen.add((key, example.label))
            if name in config.corpora:
                train.append(example)
                count += 1
                for snippet in snippets(example.text, rng, config.snippets_per_review):
                    train.append(corpora.LabeledText(snippet, example.label, example.id + "#s"))
        if name in config.corpora:
            used[name] = count
    if config.max_train_examples and len(train) > config.max_train_examples:
        keep = rng.choice(len(train), config.max_train_examples, replace=False)
        train = [train[i] for i in sorted(keep)]
    return train, validation, used


def predict_batches(model, sequences, batch_size: int, max_length: int) -> np.ndarray:
    """P(class) [N, C] for id lists, in length-sorted batches through a compiled call."""
    from .common import pad_batch

    order = np.argsort([len(s) for s in sequences], kind="stable")
    probs = np.zeros((len(sequences), model.output_shape[-1]), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        probs[rows] = np.asarray(model.predict_on_batch(pad_batch([sequences[i] for i in rows], max_length)))
    return probs


def train(config: SentimentTrainConfig, resume: bool = False, output: str | None = None, verbose: int = 2):
    """Train, evaluate on the validation split and write the package. Returns the Package."""
    import keras

    from ..evaluate import classification_report, plot_confusion_matrix
    from ..models.classifier import build_classifier, clip, copy_encoder
    from .common import BucketedBatches, balanced_class_weights, prepare_run_dir, standard_callbacks

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    run_dir = prepare_run_dir(config.run_dir, resume)
    train_rows, val_rows, used = load_examples(config)
    positive = sum(r.label for r in train_rows) / max(len(train_rows), 1)
    print(f"examples: {len(train_rows):,} train ({positive:.1%} positive), {len(val_rows):,} validation ({used})",
          flush=True)

    tok_path = run_dir / "tokenizer.model"
    if resume and tok_path.is_file():
        tokenizer = Tokenizer.load(tok_path)
    else:
        tokenizer = Tokenizer.train((r.text for r in train_rows), config.tokenizer)
        tokenizer.save(tok_path)
    model_config = dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size)
    config = dataclasses.replace(config, model=model_config)

    x_train = [clip(model_config, ids) for ids in tokenizer.encode([r.text for r in train_rows])]
    x_val = [clip(model_config, ids) for ids in tokenizer.encode([r.text for r in val_rows])]
    y_train = [r.label for r in train_rows]
    y_val = [r.label for r in val_rows]
    max_len = model_config.max_length
    weights = balanced_class_weights(y_train, model_config.num_classes) if config.balance_classes else None
    train_data = BucketedBatches(x_train, y_train, config.batch_size, max_len, shuffle=True, seed=config.seed,
                                 class_weights=weights)
    val_data = BucketedBatches(x_val, y_val, 512, max_len, shuffle=False)

    pretrained, pretraining, pretrain_used = None, None, {}
    if config.pretrain_corpora:
        texts, pretrain_used = pretraining_texts(config)
        pretrained, pretraining = pretrain_encoder(config, tokenizer, texts, [r.text for r in val_rows], run_dir,
                                                   resume, verbose)
        pretraining = {"texts": len(texts), "epochs": config.pretrain_epochs,
                       "output_vocab": config.pretrain_vocab, **pretraining}

    members, histories = [], []
    for member in range(config.ensemble):
        member_dir = prepare_run_dir(run_dir / f"member_{member}", resume)
        keras.utils.set_random_seed(config.seed + member)
        model = build_classifier(model_config, name=config.name.replace("-", "_"))
        if pretrained is not None:
            copy_encoder(pretrained, model)
        learning_rate = config.learning_rate
        if config.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                config.learning_rate, decay_steps=len(train_data) * config.epochs, alpha=0.05)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate, clipnorm=config.clipnorm),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.epochs,
            callbacks=standard_callbacks(member_dir, config.patience, monitor="val_accuracy"),
            verbose=verbose,
        )
        # The best epoch's weights, also when a resumed member had already finished.
        best = keras.saving.load_model(member_dir / "best.keras", compile=False, safe_mode=True)
        shipped = build_classifier(model_config, name=model.name)  # uncompiled, for any backend
        shipped.set_weights(as_stored(best.get_weights(), config.weights_dtype))  # evaluate what ships
        members.append(shipped)
        histories.append({k: [float(v) for v in vs] for k, vs in history.history.items()})
    train_seconds = time.time() - started

    member_probs = [predict_batches(m, x_val, 512, max_len) for m in members]
    member_accuracy = [float((p.argmax(-1) == np.asarray(y_val)).mean()) for p in member_probs]
    probs = np.mean(member_probs, axis=0)
    report = classification_report(y_val, probs)
    split = f"validation ({config.validation_fraction:.0%} hash split of {config.validation_corpus}, {len(y_val):,} reviews)"
    plot_confusion_matrix(report["confusion_matrix"], LABELS, run_dir / "confusion_matrix.png",
                          title=f"{config.name} · {split.split(' (')[0]}")
    evaluation = {"split": split, **report, "member_accuracy": member_accuracy, "history": histories,
                  "train_seconds": round(train_seconds, 1)}
    summary = {k: round(report[k], 4) for k in ("accuracy", "precision", "recall", "f1")}
    summary["ece"] = round(report["calibration"]["ece"], 4)
    metrics = {split: summary}
    if config.snippets_per_review:
        # Short inputs: one or two sentences cut from each validation review, with
        # the review's label (noisy: a sentence of a positive review can be negative).
        rng = np.random.default_rng(config.seed + 1)
        pairs = [(snippet, r.label) for r in val_rows for snippet in snippets(r.text, rng, 1)]
        x_snip = [clip(model_config, ids) for ids in tokenizer.encode([t for t, _ in pairs])]
        snip_probs = np.mean([predict_batches(m, x_snip, 512, max_len) for m in members], axis=0)
        snip = classification_report([y for _, y in pairs], snip_probs)
        metrics[f"validation snippets (one or two sentences of each validation review, {len(pairs):,}, "
                "labelled with the review's label)"] = {k: round(snip[k], 4) for k in ("accuracy", "f1")}
        evaluation["snippets"] = {k: snip[k] for k in ("examples", "accuracy", "f1", "confusion_matrix")}
    card = ModelCard(
        name=config.name,
        task="sentiment",
        languages=config.languages,
        description=config.description,
        data=tuple(DataSource(name, rows=n, license=_license(name)) for name, n in used.items())
        + tuple(DataSource(name, rows=n, license=_license(name),
                           notes="language-model pretraining of the embedding and BiLSTM: distinct texts "
                                 "of any rating, labels unused")
                for name, n in pretrain_used.items()),
        license=config.license,
        metrics=metrics,
        extra={"labels": list(LABELS), "epochs_run": [len(h.get("loss", [])) for h in histories],
               "ensemble_members": config.ensemble, "member_accuracy": [round(a, 4) for a in member_accuracy],
               "train_seconds": round(train_seconds, 1),
               **({"pretraining": pretraining} if pretraining else {})},
    )
    package = write_package(
        output or config.output, card, config, {member_name(i): m for i, m in enumerate(members)},
        {"tokenizer": tokenizer}, weights_dtype=config.weights_dtype,
        files={"evaluation.json": json.dumps(evaluation, indent=2).encode(),
               "confusion_matrix.png": run_dir / "confusion_matrix.png"},
    )
    print(json.dumps({"package": str(package.path), **summary}), flush=True)
    for name, values in metrics.items():
        print(f"{name}: {values}", flush=True)
    return package


def member_name(index: int) -> str:
    """File stem of ensemble member ``index`` in a package (``model``, ``model_1``, …)."""
    return "model" if index == 0 else f"model_{index}"


def _license(corpus: str) -> str:
    return {"nsmc": "CC0-1.0", "nsmc_raw": "CC0-1.0", "imdb": "cite Maas et al. 2011 (ACL)"}.get(corpus, "")
