"""Compare Luong and Bahdanau attention for one translation direction on a fixed budget.

    python bench/compare_attention.py configs/translate-en-fr-cpu.yaml --pairs 30000 --epochs 3

Both types train on the same random training pairs for the same epochs, with
the shipped package's tokenizers, and are scored (BLEU / chrF, beam search) on
the config's validation split. Results go to
``bench/results/<name>-attention.json``; with ``--card PACKAGE`` they are also
written into that package's card as ``attention_comparison`` (weights untouched).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

from nlpcore.config import load_config
from nlpcore.packages import read_card, update_card
from nlpcore.train.translation import TranslationTrainConfig, attention_comparison, train

ATTENTIONS = ("luong", "bahdanau")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config")
    parser.add_argument("--pairs", type=int, default=30000, help="training pairs each type sees")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tokenizers", help="package whose source.model / target.model to use "
                                             "(default: the shipped package of the config's name)")
    parser.add_argument("--card", help="package whose card gets the comparison")
    args = parser.parse_args()
    base = load_config(TranslationTrainConfig, args.config)
    tokenizers = Path(args.tokenizers or f"assets/models/{base.name}")
    out = Path("bench/results") / f"{base.name}-attention.json"
    rows = json.loads(out.read_text()).get("results", {}) if out.exists() else {}
    for attention in ATTENTIONS:
        run_dir = Path("runs/compare") / base.name / attention
        run_dir.mkdir(parents=True, exist_ok=True)
        for side in ("source", "target"):  # the same vocabularies for both types
            shutil.copyfile(tokenizers / f"{side}.model", run_dir / f"{side}.model")
        config = dataclasses.replace(
            base, model=dataclasses.replace(base.model, attention=attention), compare_attention=False,
            max_train_pairs=args.pairs, epochs=args.epochs, time_budget_minutes=0,
            run_dir=str(run_dir), output=str(run_dir / "package"))
        start = time.time()
        package = train(config, resume=True, verbose=2)
        (split, metrics), = package.card.metrics.items()
        rows[attention] = {**metrics, "epochs": package.card.extra["epochs_run"],
                           "train_seconds": package.card.extra["train_seconds"],
                           "seconds": round(time.time() - start)}
        result = {"split": split, "budget": {"pairs": args.pairs, "epochs": args.epochs}, "results": rows}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print("| attention | BLEU | chrF | token accuracy | val. loss |\n|---|---|---|---|---|")
    for attention, row in rows.items():
        print(f"| {attention} | {row['bleu']:.2f} | {row['chrf']:.2f} | {row['token_accuracy']:.4f} "
              f"| {row['loss']:.4f} |")
    if args.card and all(a in rows for a in ATTENTIONS):
        card = read_card(args.card)
        shipped = card.extra.get("attention", base.model.attention)
        winner = max(ATTENTIONS, key=lambda a: (rows[a]["bleu"], a == shipped))
        comparison = attention_comparison(
            {a: rows[a] for a in ATTENTIONS}, args.pairs, args.epochs,
            "same data, tokenizers, settings and validation split for each attention type "
            f"(bench/compare_attention.py); {winner} wins"
            + ("; the shipped model uses it, trained on the full budget" if winner == shipped else ""))
        update_card(args.card, extra={**card.extra, "attention_comparison": comparison})
        print(f"card of {args.card} updated: {winner} wins")


if __name__ == "__main__":
    main()
