"""Compare classifier architectures on the same data budget and validation split.

    python bench/compare_sentiment.py configs/sentiment-ko.yaml --train-examples 130000 --epochs 2

Each variant overrides the base config's ``model`` section; results go to
``bench/results/<name>-architectures.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from nlpcore.config import load_config
from nlpcore.train.sentiment import SentimentTrainConfig, train

VARIANTS = {
    "LSTM-128, last state": {"encoder": "lstm", "pooling": "last"},
    "BiLSTM-128, last states": {"encoder": "bilstm", "pooling": "last"},
    "BiLSTM-128, masked max+mean pooling": {"encoder": "bilstm", "pooling": "max_mean"},
    "2×BiLSTM-128, masked max+mean pooling": {"encoder": "bilstm", "pooling": "max_mean", "layers": 2},
    "Conv1D-128(5)+MaxPool(2)+BiLSTM-128, max+mean": {"encoder": "conv_lstm", "pooling": "max_mean"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config")
    parser.add_argument("--train-examples", type=int, default=0, help="0 = the config's own data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="variant names to run")
    args = parser.parse_args()
    base = load_config(SentimentTrainConfig, args.config)
    out = Path("bench/results") / f"{base.name}-architectures.json"
    rows = json.loads(out.read_text()) if out.exists() else {}
    for label, overrides in VARIANTS.items():
        if args.only and label not in args.only:
            continue
        config = dataclasses.replace(
            base,
            model=dataclasses.replace(base.model, **overrides),
            epochs=args.epochs,
            max_train_examples=args.train_examples or base.max_train_examples,
            run_dir=f"runs/compare/{base.name}/{len(rows)}",
            output=f"runs/compare/{base.name}/{len(rows)}/package",
        )
        start = time.time()
        package = train(config, verbose=2)
        (split, metrics), = package.card.metrics.items()
        rows[label] = {**metrics, "split": split, "train_examples": config.max_train_examples or "all",
                       "epochs": package.card.extra["epochs_run"], "seconds": round(time.time() - start),
                       "parameters": int(package.load_model().count_params())}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    print("| architecture | val. accuracy | F1 | params | train time |\n|---|---|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['accuracy']:.2%} | {row['f1']:.4f} | {row['parameters']:,} | {row['seconds']} s |")


if __name__ == "__main__":
    main()
