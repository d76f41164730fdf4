"""Pieces every training run shares: batching, callbacks, seeds, run folders."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from ..tokenizer import PAD_ID


def pad_batch(sequences: Sequence[Sequence[int]], max_length: int | None = None) -> np.ndarray:
    """Right-pad id lists with PAD_ID into an int32 array [B, T]; longer ones are truncated."""
    width = max((len(s) for s in sequences), default=0)
    if max_length:
        width = min(width, max_length)
    out = np.full((len(sequences), max(width, 1)), PAD_ID, dtype=np.int32)
    for row, seq in enumerate(sequences):
        seq = seq[:width]
        out[row, : len(seq)] = seq
    return out


class BucketedBatches(keras.utils.PyDataset):
    """Batches of similar-length sequences, padded per batch (less padding, faster epochs).

    sequences: id lists; labels: [N] ints. Batches are reshuffled every epoch
    (deterministically from ``seed`` and the epoch number) when ``shuffle``.
    class_weights: optional weight per label; batches then carry sample weights.
    """

    def __init__(self, sequences, labels, batch_size: int, max_length: int, shuffle: bool = True, seed: int = 0,
                 class_weights: Sequence[float] | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.sequences = [list(s[:max_length]) for s in sequences]
        self.labels = np.asarray(labels, dtype=np.int32)
        self.weights = None if class_weights is None else np.asarray(class_weights, np.float32)[self.labels]
        self.batch_size = batch_size
        self.max_length = max_length
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
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


def prepare_run_dir(run_dir: str | os.PathLike, resume: bool) -> Path:
    """The run folder; without ``resume`` an earlier run's backup is discarded."""
    import shutil

    run_dir = Path(run_dir)
    if not resume:
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        (run_dir / "history.csv").unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def steps_for(examples: int, batch_size: int) -> int:
    return max(1, math.ceil(examples / batch_size))
