"""Pieces every training run shares: batching, callbacks, seeds, run folders."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np

from ..inference import pad_batch  # noqa: F401  (defined with the NumPy inference paths, which use it too)
from ..tokenizer import PAD_ID


def use_compilation_cache(min_compile_seconds: float = 1.0) -> Path | None:
    """Under JAX, keep compiled steps on disk (JAX's persistent compilation
    cache) and return the folder; None under another backend.

    JAX compiles a train step for every batch shape, and a run that starts
    from another's package compiles the same steps again. Measured: a
    one-epoch ko→en fine-tune (1,000 pairs) took 860 s with a cold cache
    and 137 s with a warm one on a busy 2-core CPU; four fine-tunes sharing
    an H200 spent 220-250 s on their first epoch and 11-26 s on the second.
    ``$JAX_COMPILATION_CACHE_DIR`` chooses the folder; by default it is
    ``jax-cache`` in the user's cache folder (under ``$MALBEOT_HOME`` when set).
    """
    if keras.backend.backend() != "jax":
        return None
    import jax

    from ..assets import user_cache_dir

    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(user_cache_dir() / "jax-cache")
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return Path(folder)


class BucketedBatches(keras.utils.PyDataset):
    """Batches of similar-length sequences, padded per batch (less padding, faster epochs).

    sequences: id lists; labels: [N] ints (None for a subclass that makes its
    own targets). Batches are reshuffled every epoch (deterministically from
    ``seed`` and the epoch number) when ``shuffle``; ``start_epoch`` > 0
    continues that sequence of shuffles (a resumed run).
    class_weights: optional weight per label; batches then carry sample weights.
    """

    def __init__(self, sequences, labels, batch_size: int, max_length: int, shuffle: bool = True, seed: int = 0,
                 class_weights: Sequence[float] | None = None, start_epoch: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.sequences = [list(s[:max_length]) for s in sequences]
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int32)
        self.weights = None if class_weights is None else np.asarray(class_weights, np.float32)[self.labels]
        self.batch_size = batch_size
        self.max_length = max_length
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = start_epoch
        self._make_batches()

    def _make_batches(self) -> None:
        rng = np.random.default_rng(self.seed + self.epoch)
        lengths = np.array([len(s) for s in self.sequences]) + (rng.random(len(self.sequences)) if self.shuffle else 0)
        order = np.argsort(lengths, kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        # Keras' TensorFlow adapter infers the batch shape from the first two
        # batches: put the widest first (an out-of-memory shows at once) and a
        # narrower one second, so the time axis is seen as variable.
        widths = [self._width(b) for b in batches]
        if len(batches) > 1:
            widest = int(np.argmax(widths))
            batches[0], batches[widest] = batches[widest], batches[0]
            widths[0], widths[widest] = widths[widest], widths[0]
            narrower = next((i for i in range(1, len(batches)) if widths[i] != widths[0]), None)
            if narrower is not None:
                batches[1], batches[narrower] = batches[narrower], batches[1]
        self.batches = batches

    def _width(self, rows) -> int:
        return min(max(len(self.sequences[i]) for i in rows), self.max_length)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        rows = self.batches[index]
        x = pad_batch([self.sequences[i] for i in rows], self.max_length)
        if self.weights is None:
            return x, self.labels[rows]
        return x, self.labels[rows], self.weights[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.shuffle:
            self._make_batches()


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """Weights that make every class count equally, averaging 1 over the examples."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return [float(len(labels) / (num_classes * c)) if c else 0.0 for c in counts]


def standard_callbacks(run_dir: Path, patience: int, monitor: str = "val_loss") -> list[keras.callbacks.Callback]:
    """Early stopping (best weights restored), a checkpoint of the best model,
    a per-epoch history CSV and backup-and-restore so ``--resume`` continues
    an interrupted run from its last finished epoch."""
    run_dir.mkdir(parents=True, exist_ok=True)
    mode = "max" if "acc" in monitor else "min"
    return [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor=monitor, mode=mode, save_best_only=True),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``minutes`` of wall-clock time are spent (at a batch
    boundary; that epoch is still validated), and anneal the learning rate on a
    cosine from ``learning_rate`` to ``min_learning_rate`` over the budget, so a
    run sized by time rather than epochs still ends on a small rate.

    The clock starts when training does; a resumed run gets a fresh budget.
    """

    def __init__(self, minutes: float, learning_rate: float, min_learning_rate: float = 0.0):
        super().__init__()
        self.seconds = float(minutes) * 60.0
        self.learning_rate = float(learning_rate)
        self.min_learning_rate = float(min_learning_rate)
        self.started: float | None = None
        self.stopped_early = False

    def fraction(self) -> float:
        return 0.0 if self.started is None else min(1.0, (time.monotonic() - self.started) / self.seconds)

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_train_batch_begin(self, batch, logs=None):
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.fraction()))
        self.model.optimizer.learning_rate.assign(
            self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * cosine)

    def on_train_batch_end(self, batch, logs=None):
        if self.fraction() >= 1.0:
            self.stopped_early = True
            self.model.stop_training = True


class EpochSnapshots(keras.callbacks.Callback):
    """Keep the weights of the ``keep`` epochs with the lowest ``monitor`` in
    ``folder`` (one ``.weights.h5`` file each, listed in ``index.json``), for
    :func:`averaged_weights`. The index survives an interrupted run, so a
    resumed one goes on from it."""

    def __init__(self, folder: str | os.PathLike, keep: int, monitor: str = "val_loss"):
        super().__init__()
        self.folder, self.keep, self.monitor = Path(folder), int(keep), monitor
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def index_path(self) -> Path:
        return self.folder / "index.json"

    @staticmethod
    def file_name(epoch: int) -> str:
        """The weight file of ``epoch`` (counted from 1)."""
        return f"epoch-{epoch:03d}.weights.h5"

    @staticmethod
    def epoch_of(name: str) -> int:
        return int(name.removeprefix("epoch-").removesuffix(".weights.h5"))

    def kept(self) -> dict[str, float]:
        """File name → monitored value of the kept epochs, best first."""
        if not self.index_path.is_file():
            return {}
        return dict(sorted(json.loads(self.index_path.read_text()).items(), key=lambda item: item[1]))

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        kept = self.kept()
        name = self.file_name(epoch + 1)
        kept[name] = float(value)
        ranked = sorted(kept, key=kept.get)
        if name in ranked[:self.keep]:
            self.model.save_weights(self.folder / name)
        for dropped in ranked[self.keep:]:
            (self.folder / dropped).unlink(missing_ok=True)
        self.index_path.write_text(json.dumps({k: kept[k] for k in ranked[:self.keep]}, indent=1))


def averaged_weights(model: keras.Model, paths: Sequence[str | os.PathLike]) -> list[np.ndarray]:
    """The element-wise mean of the weight files ``paths`` (checkpoint averaging),
    each loaded into ``model``, whose own weights are put back afterwards."""
    own = model.get_weights()
    total = None
    for path in paths:
        model.load_weights(path)
        weights = model.get_weights()
        total = [w.astype(np.float64) for w in weights] if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights(own)
    return [(t / len(paths)).astype(w.dtype) for t, w in zip(total, own)]


def prepare_run_dir(run_dir: str | os.PathLike, resume: bool) -> Path:
    """The run folder; without ``resume`` an earlier run's backup, history and epoch snapshots are discarded."""
    import shutil

    run_dir = Path(run_dir)
    if not resume:
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        shutil.rmtree(run_dir / "snapshots", ignore_errors=True)  # EpochSnapshots
        (run_dir / "history.csv").unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def steps_for(examples: int, batch_size: int) -> int:
    return max(1, math.ceil(examples / batch_size))


def _round_up(width: int, multiple: int) -> int:
    return width if multiple <= 1 else -(-width // multiple) * multiple


class ParallelBatches(keras.utils.PyDataset):
    """Length-bucketed batches of sentence pairs for teacher-forced sequence-to-sequence training.

    sources, targets: id lists without BOS/EOS (cut to ``max_source_length`` /
    ``max_target_length``). Each batch is
    ``({"source": [B, S], "target_in": [B, T]}, target_out [B, T], weights [B, T])``
    with ``target_in = BOS + target``, ``target_out = target + EOS`` and
    ``weights`` 1.0 on real tokens, 0.0 on padding (the loss and the accuracy
    are per target token).

    Pairs are sorted by target then source length (with random tie-breaking
    when ``shuffle``) and cut into batches of at most ``batch_size`` pairs and,
    when ``max_tokens`` is set, at most that many padded tokens
    (B × max(S, T)), so a few long sentences do not blow up memory. Widths are
    rounded up to a multiple of ``pad_multiple`` (fewer distinct shapes, fewer
    recompilations under JAX). Batches are reshuffled every epoch from
    ``seed`` and the epoch number.

    segment: ``segment(epoch) -> (sources, targets)``, the same pairs
    segmented anew for every epoch (subword regularization), from the start
    and at each ``on_epoch_end``; None keeps the given ids. Pairs are still
    grouped by the given ids' lengths, so every epoch has the same number of
    batches (Keras counts them once).
    """

    def __init__(self, sources, targets, batch_size: int, max_source_length: int, max_target_length: int,
                 max_tokens: int = 0, shuffle: bool = True, seed: int = 0, pad_multiple: int = 1,
                 segment: Callable[[int], tuple[list, list]] | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        from ..tokenizer import BOS_ID, EOS_ID

        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.segment = segment
        self._set_pairs(sources, targets)
        self._source_len = np.array([len(s) for s in self.sources], dtype=np.float64)
        self._target_len = np.array([len(t) for t in self.targets], dtype=np.float64)
        self.epoch = 0
        if segment is not None:
            self._segment()
        self.bos, self.eos = BOS_ID, EOS_ID
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.pad_multiple = pad_multiple
        self._make_batches()

    def _set_pairs(self, sources, targets) -> None:
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        self.sources = [list(s[: self.max_source_length]) for s in sources]
        # target_in and target_out are one longer than the target.
        self.targets = [list(t[: self.max_target_length - 1]) for t in targets]

    @property
    def pairs(self) -> int:
        return len(self.sources)

    def _widths(self, rows) -> tuple[int, int]:
        source = max((len(self.sources[i]) for i in rows), default=1)
        target = max((len(self.targets[i]) for i in rows), default=0) + 1
        return _round_up(max(source, 1), self.pad_multiple), _round_up(target, self.pad_multiple)

    def _make_batches(self) -> None:
        rng = np.random.default_rng(self.seed + self.epoch)
        noise = rng.random(len(self.sources)) if self.shuffle else np.zeros(len(self.sources))
        source_len, target_len = self._source_len, self._target_len
        order = np.lexsort((noise, source_len, target_len))
        batches, current, widest = [], [], 0
        for index in order:
            width = max(source_len[index], target_len[index] + 1)
            grown = max(widest, width)
            if current and (len(current) >= self.batch_size or (self.max_tokens and grown * (len(current) + 1) > self.max_tokens)):
                batches.append(np.array(current))
                current, grown = [], width
            current.append(index)
            widest = grown
        if current:
            batches.append(np.array(current))
        if self.shuffle:
            rng.shuffle(batches)
        # Widest first (an out-of-memory shows at once), one of other widths second,
        # both widths differing where a batch does: TensorFlow's adapter fixes an
        # axis whose width the first two batches share.
        widths = [self._widths(b) for b in batches]
        if len(batches) > 1:
            top = int(np.argmax([len(b) * max(w) for b, w in zip(batches, widths)]))
            for order in (batches, widths):
                order[0], order[top] = order[top], order[0]
            differs = [i for i in range(1, len(batches)) if widths[i] != widths[0]]
            other = next((i for i in differs if all(a != b for a, b in zip(widths[i], widths[0]))),
                         differs[0] if differs else None)
            if other is not None:
                batches[1], batches[other] = batches[other], batches[1]
        elif self.segment is not None:
            raise ValueError("subword sampling needs two batches of training pairs or more: the widths of a "
                             "lone batch would be fixed, and a later epoch's segmentation can change them")
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        rows = self.batches[index]
        source_width, target_width = self._widths(rows)
        source = np.zeros((len(rows), source_width), np.int32)
        target_in = np.zeros((len(rows), target_width), np.int32)
        target_out = np.zeros((len(rows), target_width), np.int32)
        for r, i in enumerate(rows):
            src, tgt = self.sources[i], self.targets[i]
            source[r, : len(src)] = src
            target_in[r, : len(tgt) + 1] = [self.bos, *tgt]
            target_out[r, : len(tgt) + 1] = [*tgt, self.eos]
        weights = (target_out != 0).astype(np.float32)
        return {"source": source, "target_in": target_in}, target_out, weights

    def _segment(self) -> None:
        count = len(self.sources)
        self._set_pairs(*self.segment(self.epoch))
        if len(self.sources) != count:
            raise ValueError(f"segment({self.epoch}) gave {len(self.sources)} pairs, not {count}")

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.segment is not None:
            self._segment()
        if self.shuffle or self.segment is not None:
            self._make_batches()


class EncoderLMBatches(BucketedBatches):
    """Length-bucketed batches for :func:`nlpcore.models.classifier.build_encoder_lm`.

    Each batch is ``(ids [B, T], {"next_piece", "previous_piece"} targets [B, T],
    the same keys' weights [B, T])``: the piece after / before each position,
    padding weighted 0. Target ids at or above ``output_vocab`` (rarer pieces;
    SentencePiece numbers pieces by frequency) share the last class.
    """

    def __init__(self, sequences, batch_size: int, max_length: int, output_vocab: int, shuffle: bool = True,
                 seed: int = 0, start_epoch: int = 0):
        super().__init__(sequences, None, batch_size, max_length, shuffle, seed, start_epoch=start_epoch)
        self.output_vocab = output_vocab

    def __getitem__(self, index: int):
        x = pad_batch([self.sequences[i] for i in self.batches[index]], self.max_length)
        following = np.pad(x[:, 1:], ((0, 0), (0, 1)))
        preceding = np.pad(x[:, :-1], ((0, 0), (1, 0)))
        targets = {"next_piece": following, "previous_piece": preceding}
        weights = {k: (v != PAD_ID).astype(np.float32) for k, v in targets.items()}
        return x, {k: np.minimum(v, self.output_vocab - 1) for k, v in targets.items()}, weights
