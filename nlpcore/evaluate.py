"""Evaluation metrics and reports.

Classification: accuracy, precision, recall, F1, confusion matrix and a
calibration check (expected calibration error over 10 confidence bins, Brier
score). Translation: BLEU and chrF through sacrebleu. Language models: nats
per character.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def classification_report(labels: Sequence[int], probs: np.ndarray, positive: int = 1, bins: int = 10) -> dict[str, Any]:
    """Metrics of a binary classifier.

    labels: [N] true classes; probs: [N, C] predicted probabilities.
    Precision, recall and F1 are for class ``positive``; the confusion matrix
    is ``[[true negatives, false positives], [false negatives, true positives]]``
    for C = 2 (rows: truth, columns: prediction).
    """
    y = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError(f"probs must be [N, C] with N = {len(y)}, got {probs.shape}")
    num_classes = probs.shape[1]
    pred = probs.argmax(-1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    tp = confusion[positive, positive]
    fp = confusion[:, positive].sum() - tp
    fn = confusion[positive, :].sum() - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "examples": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "confusion_matrix": confusion.tolist(),
        "calibration": calibration(y, probs, bins),
    }


def calibration(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability of the predicted confidences.

    ece: expected calibration error, the example-weighted mean of
    |accuracy − confidence| over equal-width confidence bins; brier: mean
    squared error of the probability vector against the one-hot truth.
    """
    confidence = probs.max(-1)
    correct = probs.argmax(-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        n = int(in_bin.sum())
        if not n:
            continue
        acc, conf = float(correct[in_bin].mean()), float(confidence[in_bin].mean())
        ece += n / len(labels) * abs(acc - conf)
        table.append({"from": float(edges[b]), "to": float(edges[b + 1]), "count": n, "accuracy": acc, "confidence": conf})
    onehot = np.eye(probs.shape[1])[labels]
    return {"ece": float(ece), "brier": float(((probs - onehot) ** 2).sum(-1).mean()), "bins": table}


def plot_confusion_matrix(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: str | os.PathLike, title: str = "") -> Path:
    """Save a confusion-matrix heatmap as PNG (counts and row percentages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion, dtype=np.float64)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=120)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{int(matrix[i, j]):,}\n{rows[i, j]:.1%}", ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu's default 13a tokenisation) and chrF, one reference each."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)])
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {"bleu": float(bleu.score), "chrf": float(chrf.score), "sentences": len(hypotheses)}
