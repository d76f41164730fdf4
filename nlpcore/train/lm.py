"""Train a subword LSTM language model and write its model package.

``nlpcore train lm --config configs/generate-en.yaml``

Held-out text is contiguous: either the last ``validation_fraction`` of every
document (``split: tail``; for tinyshakespeare, its last 10 %) or blocks of
about ``block_chars`` characters, cut at line ends, of which a hash of
(corpus, document, block number) picks ``validation_fraction`` (``split:
blocks``; novels, books, reviews). The tokenizer is trained on the training
text only. Training is truncated back-propagation through time: the training
stream is cut into ``batch_size`` contiguous lanes (at a new random offset
every epoch), each batch holds the next ``sequence_length`` pieces of every
lane, and the LSTM state carries over from one batch to the next, so the model
learns to read long texts; every epoch ends with a validation loss over the
held-out text read the same way, and the run keeps the best epoch, stops
early, checkpoints and resumes. The figure written into the
card is exact: every held-out stretch is scored in one pass from ``<s>`` with
the shipped NumPy model (:func:`score_text`), in nats per character.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import keras
import numpy as np

from .. import data as corpora
from ..models.language_model import LanguageModelConfig
from ..tokenizer import BOS_ID, EOS_ID, Tokenizer, TokenizerConfig

SPLITS = ("tail", "blocks")
LICENSES = {
    "tinyshakespeare": "public domain",
    "gutenberg": "public domain (US), Project Gutenberg",
    "koconovel": "CC BY-SA 4.0 (storidient/KoCoNovel)",
    "nsmc_raw": "CC0-1.0",
    "nsmc": "CC0-1.0",
}


@dataclass(frozen=True)
class SamplePrompt:
    """A prompt whose continuation goes into the card."""

    prompt: str
    max_new_tokens: int = 120


@dataclass(frozen=True)
class VocabSearch:
    """Choose the vocabulary size by held-out nats per character.

    Each size in ``sizes`` gets its own tokenizer and a short run of a small
    model (``model``, about ``steps`` batches of ``batch_size`` lanes for every
    size, so about the same compute) scored on
    at most ``validation_chars`` characters of the held-out text; the best
    size is used for the real run. Empty ``sizes``: use ``tokenizer.vocab_size``.
    """

    sizes: tuple[int, ...] = ()
    steps: int = 200
    batch_size: int = 32
    validation_chars: int = 40_000
    model: LanguageModelConfig = LanguageModelConfig(embedding_dim=256, units=256, layers=1,
                                                     embedding_dropout=0.0, dropout=0.1)


@dataclass(frozen=True)
class LMTrainConfig:
    """Everything a language-model run needs; saved in the package as ``config.yaml``.

    corpora: names from :data:`nlpcore.data.CORPORA` (``tinyshakespeare``,
        ``gutenberg``, ``koconovel``, ``nsmc_raw``) or text files.
    max_documents / max_chars: per corpus, 0 = all (books or reviews are taken
        in file order; ``max_chars`` cuts the corpus's text).
    split: ``"tail"`` or ``"blocks"`` (see the module docstring).
    sequence_length: pieces per batch row (back-propagation reaches this far).
    batch_size: lanes read in parallel; an epoch is one pass over the training stream.
    restart_rate: chance that a lane restarts from zero state (after ``<s>``) at a batch.
    lr_schedule: ``"constant"`` or ``"cosine"`` (to 5 % of ``learning_rate``
        over ``epochs`` × steps per epoch).
    init_from: a language-model package (installed name or folder) whose
        tokenizer and weights start this run, e.g. one pretrained on a larger
        corpus, fine-tuned here. Its architecture is kept (``model``'s
        dropouts apply), its tokenizer is used as it is (no vocabulary search),
        and its training data is listed in the new card too.
    weights_dtype: how the package stores weights (``float16`` halves it); the
        card's figure is scored on the stored weights.
    """

    name: str = "generate-en"
    languages: tuple[str, ...] = ("en",)
    description: str = ""
    license: str = ""
    corpora: tuple[str, ...] = ("tinyshakespeare",)
    max_documents: int = 0
    max_chars: int = 0
    split: str = "tail"
    validation_fraction: float = 0.1
    block_chars: int = 5000
    split_salt: str = "malbeot"
    tokenizer: TokenizerConfig = TokenizerConfig(vocab_size=2048, character_coverage=1.0, hard_vocab_limit=False)
    vocab_search: VocabSearch = VocabSearch()
    model: LanguageModelConfig = LanguageModelConfig()
    sequence_length: int = 128
    batch_size: int = 64
    restart_rate: float = 1 / 16
    epochs: int = 10
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"
    init_from: str = ""
    weights_dtype: str = "float32"
    clipnorm: float = 1.0
    patience: int = 2
    seed: int = 42
    samples: tuple[SamplePrompt, ...] = (SamplePrompt("ROMEO:"),)
    sample_temperature: float = 0.8
    sample_top_p: float = 0.9
    output: str = "runs/generate-en/package"
    run_dir: str = "runs/generate-en"

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {self.split!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1)")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")
        if self.sequence_length < 2 or self.batch_size < 1:
            raise ValueError("sequence_length must be ≥ 2 and batch_size ≥ 1")
        if self.weights_dtype not in ("float32", "float16"):  # checked before training, not after
            raise ValueError(f"weights_dtype must be float32 or float16, not {self.weights_dtype!r}")


# ====================================================================== text and splits
@dataclass(frozen=True)
class Segment:
    """A contiguous stretch of one document.

    ends_document: the stretch is the end of its document (training then
    appends ``</s>``).
    """

    corpus: str
    document: str
    text: str
    ends_document: bool = True


def read_documents(name: str) -> Iterable[tuple[str, str]]:
    """(title, text) for each document of a corpus."""
    kind = corpora.CORPORA[name].kind if name in corpora.CORPORA else "text"
    path = corpora.corpus_path(name)
    if kind == "books":
        yield from (corpora.read_gutenberg(path) if name == "gutenberg" else corpora.read_koconovel(path))
    elif kind == "ratings":
        for review in corpora.read_nsmc_ratings(path):
            yield review.id, review.text
    elif kind == "labels":
        for review in corpora.read_nsmc(path):
            yield review.id, review.text
    else:
        yield name, corpora.read_text(path)


def line_blocks(text: str, block_chars: int) -> list[str]:
    """``text`` cut at line ends into blocks of at least ``block_chars`` characters
    (the last may be shorter); joining them gives back ``text``."""
    blocks, start = [], 0
    while start < len(text):
        end = text.find("\n", start + block_chars)
        end = len(text) if end < 0 else end + 1
        blocks.append(text[start:end])
        start = end
    return blocks


def split_document(config: LMTrainConfig, corpus: str, title: str, text: str) -> tuple[list[Segment], list[Segment]]:
    """(training segments, validation segments) of one document."""
    if config.split == "tail":
        cut = int(len(text) * (1.0 - config.validation_fraction))
        newline = text.rfind("\n", 0, cut)
        cut = newline + 1 if newline > 0 else cut
        train = [Segment(corpus, title, text[:cut], ends_document=False)] if cut > 0 else []
        held = [Segment(corpus, title, text[cut:])] if cut < len(text) else []
        return train, held
    train, held = [], []
    runs: list[tuple[bool, list[str]]] = []
    for index, block in enumerate(line_blocks(text, config.block_chars)):
        is_val = corpora.is_validation(f"{corpus}\x00{title}\x00{index}", config.validation_fraction,
                                       config.split_salt)
        if runs and runs[-1][0] == is_val:
            runs[-1][1].append(block)
        else:
            runs.append((is_val, [block]))
    for number, (is_val, blocks) in enumerate(runs):
        segment = Segment(corpus, title, "".join(blocks), ends_document=number == len(runs) - 1)
        (held if is_val else train).append(segment)
    return train, held


def load_segments(config: LMTrainConfig) -> tuple[list[Segment], list[Segment], dict[str, dict[str, int]]]:
    """(training segments, validation segments, per-corpus counts)."""
    train: list[Segment] = []
    held: list[Segment] = []
    counts: dict[str, dict[str, int]] = {}
    for name in config.corpora:
        documents = chars = train_chars = 0
        for title, text in read_documents(name):
            text = text.strip("\n")
            if not text.strip():
                continue
            if config.max_chars and chars + len(text) > config.max_chars:
                text = text[: config.max_chars - chars]
                cut = text.rfind("\n")
                text = text[:cut] if cut > 0 else text
            t, h = split_document(config, name, title, text)
            train += t
            held += h
            documents += 1
            chars += len(text)
            train_chars += sum(len(s.text) for s in t)
            if (config.max_documents and documents >= config.max_documents) or \
                    (config.max_chars and chars >= config.max_chars):
                break
        counts[name] = {"documents": documents, "chars": chars, "train_chars": train_chars,
                        "validation_chars": chars - train_chars}
    if not train or not held:
        raise ValueError("the split left no training or no validation text; use more text or another split")
    return train, held, counts


def tokenizer_sentences(segments: Sequence[Segment], max_chars: int = 4000) -> Iterable[str]:
    """Training text for SentencePiece in stretches of at most ``max_chars``, cut at
    blank lines or line ends, so newlines are part of what it learns."""
    for segment in segments:
        for block in segment.text.split("\n\n"):
            while len(block) > max_chars:
                cut = block.rfind("\n", 0, max_chars)
                cut = cut if cut > 0 else max_chars
                yield block[:cut]
                block = block[cut:].lstrip("\n")
            if block.strip():
                yield block


def encode_stream(tokenizer: Tokenizer, segments: Sequence[Segment]) -> np.ndarray:
    """int32 [N]: ``<s>`` + pieces of every segment (+ ``</s>`` at a document's end), concatenated."""
    from ..generation import encode_exact

    parts = []
    for segment in segments:
        ids = [BOS_ID, *encode_exact(tokenizer, segment.text)]
        if segment.ends_document:
            ids.append(EOS_ID)
        parts.append(np.asarray(ids, dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, np.int32)


# ====================================================================== batches
class LaneBatches(keras.utils.PyDataset):
    """Batches for truncated back-propagation through time:
    ``({"ids": x [B, T], "restart": r [B]}, y [B, T])``, y = the pieces after x.

    The stream is cut into B equal contiguous lanes; batch k holds pieces
    [kT, (k+1)T) of every lane, so row b of batch k + 1 continues row b of
    batch k, and the model carries its state across them (see
    :class:`nlpcore.models.language_model.CarriedStateLSTM`). A row restarts
    (r = 1: zero state, and its first input is ``<s>``, as when a text is
    scored or continued) at the start of every lane and, after that, at each
    batch with probability ``restart_rate``, so the model learns both to start
    anywhere and to read long texts. Every epoch the lanes start at a new
    random offset in [0, T) and restarts fall elsewhere (seeded by ``seed``
    and the epoch number) when ``shuffle``. max_steps: stop an epoch after
    that many batches (0 = a whole pass). Pass ``shuffle=False`` to ``fit``:
    the batch order is the point.
    """

    def __init__(self, stream: np.ndarray, sequence_length: int, batch_size: int, shuffle: bool = True,
                 seed: int = 0, max_steps: int = 0, restart_rate: float = 0.0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.stream = np.asarray(stream, dtype=np.int32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.restart_rate = restart_rate
        lane = (len(self.stream) - (sequence_length - 1 if shuffle else 0)) // batch_size  # pieces per lane
        if lane < 2:
            raise ValueError(f"{len(self.stream)} pieces are too few for {batch_size} lanes")
        self.length = min(sequence_length, lane - 1)  # a short held-out text gets one shorter batch
        self.steps = (lane - 1) // self.length
        if max_steps:
            self.steps = min(self.steps, max_steps)
        self.lane = lane
        self.epoch = 0
        self._plan = (-1, 0, None)

    def __len__(self) -> int:
        return self.steps

    def _epoch_plan(self) -> tuple[int, np.ndarray]:
        """(offset, restart flags [steps, B]) of the current epoch."""
        if self._plan[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            offset = int(rng.integers(self.length)) if self.shuffle else 0
            restarts = rng.random((self.steps, self.batch_size)) < self.restart_rate
            restarts[0] = True
            self._plan = (self.epoch, offset, restarts)
        return self._plan[1], self._plan[2]

    def offset(self) -> int:
        return self._epoch_plan()[0]

    def __getitem__(self, index: int):
        offset, restarts = self._epoch_plan()
        starts = offset + self.lane * np.arange(self.batch_size) + index * self.length  # [B]
        windows = self.stream[starts[:, None] + np.arange(self.length + 1)]
        restart = restarts[index]
        x = windows[:, :-1].copy()
        x[restart, 0] = BOS_ID
        return {"ids": x, "restart": restart.astype(np.float32)}, windows[:, 1:]

    def on_epoch_end(self) -> None:
        self.epoch += 1


# ====================================================================== scoring
def score_text(package, text: str) -> dict[str, float | int]:
    """{"nats_per_char", "chars", "tokens"} of ``text`` under a language-model package.

    package: a :class:`nlpcore.packages.Package`, a package folder or an
    installed package's name. See :meth:`nlpcore.generation.LanguageModelRunner.score`.
    """
    from ..generation import LanguageModelRunner
    from ..packages import Package, find_package, load_package

    if not isinstance(package, Package):
        package = load_package(find_package(str(package)))
    result = LanguageModelRunner.from_package(package).score(text)
    return {"nats_per_char": result["nats_per_char"], "chars": result["chars"], "tokens": result["tokens"]}


def score_segments(model, tokenizer: Tokenizer, segments: Sequence[Segment], max_chars: int = 0) -> dict[str, Any]:
    """Exact nats per character of held-out segments, each read from ``<s>`` in one pass.

    model: a :class:`nlpcore.inference.NumpyLanguageModel`; max_chars: stop
    after this many characters (whole segments, the last one cut at a line end).
    """
    from ..generation import LanguageModelRunner

    runner = LanguageModelRunner(model, tokenizer)
    nats, chars, tokens = 0.0, 0, 0
    for segment in segments:
        text = segment.text
        if max_chars and chars + len(text) > max_chars:
            text = text[: max(max_chars - chars, 1)]
            cut = text.rfind("\n")
            text = text[:cut] if cut > 0 else text
        result = runner.score(text)
        nats += result["nats"]
        chars += result["chars"]
        tokens += result["tokens"]
        if max_chars and chars >= max_chars:
            break
    return {"nats_per_char": nats / chars, "bits_per_char": nats / chars / math.log(2), "chars": chars,
            "tokens": tokens, "chars_per_token": chars / tokens}


# ====================================================================== training
def _nats_per_char_callback(chars_per_token: float):
    class ValidationNatsPerChar(keras.callbacks.Callback):
        """Adds ``val_nats_per_char`` (validation loss per piece ÷ characters per piece) to the epoch logs."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and "val_loss" in logs:
                logs["val_nats_per_char"] = float(logs["val_loss"]) / chars_per_token

    return ValidationNatsPerChar()


def _compile(model, config: LMTrainConfig, total_steps: int):
    rate = config.learning_rate
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(total_steps, 1), alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=config.clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def train_tokenizer(config: LMTrainConfig, segments: Sequence[Segment], vocab_size: int) -> Tokenizer:
    return Tokenizer.train(tokenizer_sentences(segments), dataclasses.replace(config.tokenizer, vocab_size=vocab_size))


def search_vocab_size(config: LMTrainConfig, train_segments, held_segments, verbose: int = 2) -> dict[int, dict]:
    """Held-out nats per character of a short run for each size in ``config.vocab_search.sizes``."""
    from ..inference import NumpyLanguageModel
    from ..models.language_model import build_language_model, copy_weights

    search = config.vocab_search
    results: dict[int, dict] = {}
    for size in search.sizes:
        started = time.time()
        keras.utils.set_random_seed(config.seed)
        tokenizer = train_tokenizer(config, train_segments, size)
        stream = encode_stream(tokenizer, train_segments)
        per_pass = len(LaneBatches(stream, config.sequence_length, search.batch_size))
        epochs = max(1, math.ceil(search.steps / per_pass))  # the same number of steps for every size
        batches = LaneBatches(stream, config.sequence_length, search.batch_size, seed=config.seed,
                              max_steps=math.ceil(search.steps / epochs), restart_rate=config.restart_rate)
        model_config = dataclasses.replace(search.model, vocab_size=tokenizer.vocab_size)
        model = build_language_model(model_config, carry_state_batch=search.batch_size)
        _compile(model, dataclasses.replace(config, lr_schedule="cosine"), len(batches) * epochs)
        model.fit(batches, epochs=epochs, shuffle=False, verbose=verbose)
        shipped = copy_weights(model, build_language_model(model_config))
        score = score_segments(NumpyLanguageModel(shipped, model_config), tokenizer, held_segments,
                               search.validation_chars)
        results[tokenizer.vocab_size] = {**{k: round(v, 4) for k, v in score.items()},
                                         "seconds": round(time.time() - started, 1)}
        print(json.dumps({"vocab_search": tokenizer.vocab_size, **results[tokenizer.vocab_size]}), flush=True)
    return results


def generate_samples(model, tokenizer: Tokenizer, config: LMTrainConfig) -> list[dict[str, Any]]:
    """Continuations of ``config.samples`` (seeded nucleus sampling) for the card."""
    from ..generation import LanguageModelRunner
    from ..services import GenerateOptions

    runner = LanguageModelRunner(model, tokenizer)
    out = []
    for number, sample in enumerate(config.samples):
        options = GenerateOptions(max_new_tokens=sample.max_new_tokens, sampler="top_p",
                                  temperature=config.sample_temperature, top_p=config.sample_top_p,
                                  repetition_penalty=1.0, seed=config.seed + number)
        text = "".join(piece.text for piece in runner.stream(sample.prompt, options))
        out.append({"prompt": sample.prompt, "continuation": text,
                    "options": {"sampler": "top_p", "temperature": options.temperature, "top_p": options.top_p,
                                "seed": options.seed, "max_new_tokens": options.max_new_tokens}})
    return out


def _split_description(config: LMTrainConfig, counts: dict[str, dict[str, int]]) -> str:
    held = sum(c["validation_chars"] for c in counts.values())
    names = ", ".join(counts)
    if config.split == "tail":
        return f"validation (last {config.validation_fraction:.0%} of each document of {names}; {held:,} chars)"
    return (f"validation ({config.validation_fraction:.0%} of {names} in contiguous blocks of "
            f"~{config.block_chars:,} chars, hash split; {held:,} chars)")


def train(config: LMTrainConfig, resume: bool = False, output: str | None = None, verbose: int = 2):
    """Train, score the held-out text exactly and write the package. Returns the Package."""
    from ..inference import NumpyLanguageModel
    from ..models.language_model import build_language_model, copy_weights, count_parameters
    from ..packages import DataSource, ModelCard, as_stored, find_package, load_package, write_package
    from .common import prepare_run_dir, standard_callbacks

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    run_dir = prepare_run_dir(config.run_dir, resume)
    train_segments, held_segments, counts = load_segments(config)
    print(json.dumps({"corpora": counts}), flush=True)

    tok_path = run_dir / "tokenizer.model"
    search_path = run_dir / "vocab_search.json"
    search: dict = json.loads(search_path.read_text()) if resume and search_path.is_file() else {}
    init = load_package(find_package(config.init_from)) if config.init_from else None
    if init is not None:
        tokenizer = init.tokenizer()
        tokenizer.save(tok_path)
    elif resume and tok_path.is_file():
        tokenizer = Tokenizer.load(tok_path)
    else:
        vocab_size = config.tokenizer.vocab_size
        if config.vocab_search.sizes:
            search = {str(k): v for k, v in search_vocab_size(config, train_segments, held_segments, verbose).items()}
            search_path.write_text(json.dumps(search, indent=2))
            vocab_size = int(min(search, key=lambda k: search[k]["nats_per_char"]))
        tokenizer = train_tokenizer(config, train_segments, vocab_size)
        tokenizer.save(tok_path)
    model_config = dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size)
    if init is not None:  # the pretrained architecture, this run's dropouts
        model_config = dataclasses.replace(init.config(LMTrainConfig).model,
                                           embedding_dropout=config.model.embedding_dropout,
                                           dropout=config.model.dropout)
    config = dataclasses.replace(config, model=model_config,
                                 tokenizer=dataclasses.replace(config.tokenizer, vocab_size=tokenizer.vocab_size))

    train_stream = encode_stream(tokenizer, train_segments)
    held_stream = encode_stream(tokenizer, held_segments)
    held_chars = sum(len(s.text) for s in held_segments)
    chars_per_token = held_chars / max(len(held_stream) - len(held_segments), 1)
    train_data = LaneBatches(train_stream, config.sequence_length, config.batch_size, seed=config.seed,
                             restart_rate=config.restart_rate)
    val_data = LaneBatches(held_stream, config.sequence_length, config.batch_size, shuffle=False)
    print(json.dumps({"train_pieces": int(len(train_stream)), "validation_pieces": int(len(held_stream)),
                      "vocab_size": tokenizer.vocab_size, "chars_per_piece": round(chars_per_token, 3),
                      "steps_per_epoch": len(train_data)}), flush=True)

    model = build_language_model(model_config, name=config.name.replace("-", "_"),
                                 carry_state_batch=config.batch_size)
    _compile(model, config, len(train_data) * config.epochs)
    if init is not None:
        copy_weights(init.load_model(), model)
        print(json.dumps({"initialized_from": init.card.name, "metrics": init.card.metrics}), flush=True)
    callbacks = [_nats_per_char_callback(chars_per_token),
                 *standard_callbacks(run_dir, config.patience, monitor="val_loss")]
    history = model.fit(train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks,
                        shuffle=False, verbose=verbose)
    train_seconds = time.time() - started

    # Uncompiled and stateless, for any backend.
    shipped = copy_weights(model, build_language_model(model_config, name=model.name))
    shipped.set_weights(as_stored(shipped.get_weights(), config.weights_dtype))  # score what ships
    numpy_model = NumpyLanguageModel(shipped, model_config)
    score = score_segments(numpy_model, tokenizer, held_segments)
    split = _split_description(config, counts)
    summary = {k: round(v, 4) for k, v in score.items()}
    samples = generate_samples(numpy_model, tokenizer, config)
    history_rows = _read_history(run_dir / "history.csv") or {k: [float(v) for v in vs]
                                                              for k, vs in history.history.items()}
    evaluation = {"split": split, **summary, "history": history_rows, "train_seconds": round(train_seconds, 1),
                  "vocab_search": search, "samples": samples}
    pretraining_data: tuple = ()
    extra_init: dict[str, Any] = {}
    if init is not None:
        pretraining_data = tuple(dataclasses.replace(d, notes=f"pretraining ({init.card.name}): {d.notes}")
                                 for d in init.card.data)
        extra_init = {"initialized_from": {"package": init.card.name, "metrics": init.card.metrics,
                                           "epochs_run": init.card.extra.get("epochs_run"),
                                           "train_seconds": init.card.extra.get("train_seconds")}}
    card = ModelCard(
        name=config.name,
        task="generation",
        languages=config.languages,
        description=config.description,
        data=(*pretraining_data,
              *(DataSource(name, rows=c["documents"], license=LICENSES.get(name, ""),
                           notes=f"{c['train_chars']:,} chars trained on, {c['validation_chars']:,} held out")
                for name, c in counts.items())),
        license=config.license,
        metrics={split: summary},
        extra={"parameters": count_parameters(shipped), "epochs_run": len(history_rows.get("loss", [])),
               "train_seconds": round(train_seconds, 1), "vocab_search": search, "samples": samples, **extra_init,
               "scoring": "sum over held-out stretches of -log p(piece | <s>, previous pieces), every piece "
                          "counted, </s> not; divided by the stretches' characters"},
    )
    package = write_package(
        output or config.output, card, config, {"model": shipped}, {"tokenizer": tokenizer},
        files={"evaluation.json": json.dumps(evaluation, indent=2, ensure_ascii=False).encode()},
        weights_dtype=config.weights_dtype,
    )
    print(json.dumps({"package": str(package.path), **summary}), flush=True)
    return package


def _read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch history CSV (all epochs, across resumes) as columns."""
    import csv

    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and value not in ("", None):
                columns.setdefault(key, []).append(float(value))
    return columns
