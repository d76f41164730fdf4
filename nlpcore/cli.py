"""The ``nlpcore`` command line: thin argparse subcommands over the library.

Every subcommand accepts ``--json`` for JSON-lines output (one object per
line). Exit codes: 0 success, 1 an error the message explains, 2 bad usage,
3 a subcommand this version does not provide yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Iterator, Sequence

from . import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def emit(record: dict[str, Any], as_json: bool, text: str | None = None, stream=None) -> None:
    """Write one result: a JSON line, or ``text`` for people."""
    stream = stream or sys.stdout
    if as_json:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        stream.write((text if text is not None else " ".join(f"{k}={v}" for k, v in record.items())) + "\n")
    stream.flush()


def fail(message: str, code: int = EXIT_ERROR) -> int:
    sys.stderr.write(f"nlpcore: {message}\n")
    return code


def _unavailable(feature: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        return fail(f"'{feature}' is not available in this version yet", EXIT_UNAVAILABLE)

    return handler


# ---------------------------------------------------------------- models
def _cmd_models(args: argparse.Namespace) -> int:
    from . import packages

    if args.action == "list":
        rows = list(packages.iter_packages())
        if not rows and not args.json:
            sys.stdout.write("no model packages installed\n")
        for path, card in rows:
            if isinstance(card, packages.PackageError):
                emit({"name": path.name, "path": str(path), "error": str(card)}, args.json,
                     f"{path.name:<20} UNREADABLE  {card}")
                continue
            emit(
                {"name": card.name, "task": card.task, "languages": list(card.languages), "version": card.version,
                 "size_bytes": card.size_bytes, "path": str(path)},
                args.json,
                f"{card.name:<20} {card.task:<12} {'/'.join(card.languages):<8} v{card.version:<8} "
                f"{card.size_bytes / 1e6:7.1f} MB  {path}",
            )
        return EXIT_OK
    if args.action == "average":
        return _average_models(args)
    if len(args.target) != 1:
        return fail(f"models {args.action} needs one package name or folder", EXIT_USAGE)
    args.target = args.target[0]
    try:
        if args.action == "install":
            target = packages.install_package(args.target)
            emit({"installed": target.name, "path": str(target)}, args.json, f"installed {target.name} → {target}")
            return EXIT_OK
        path = packages.find_package(args.target)
        card = packages.verify_package(path) if args.action == "verify" else packages.read_card(path)
    except packages.PackageError as exc:
        return fail(str(exc))
    if args.action == "verify":
        emit({"name": card.name, "ok": True, "files": len(card.files)}, args.json,
             f"{card.name}: OK ({len(card.files)} files verified)")
    else:
        if args.json:
            sys.stdout.write(json.dumps(json.loads(card.to_json()), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(card.to_json())
    return EXIT_OK


def _average_models(args: argparse.Namespace) -> int:
    """``nlpcore models average A B [...] --output DIR [--weights W,W,...]``."""
    from . import packages

    if len(args.target) < 2 or not args.output:
        return fail("models average needs two packages or more and --output", EXIT_USAGE)
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        return fail(f"--weights takes numbers separated by commas, not {args.weights!r}", EXIT_USAGE)
    try:
        package = packages.average_packages(args.target, args.output, weights)
    except packages.PackageError as exc:
        return fail(str(exc))
    average = package.card.extra["weight_average"]["packages"]
    emit({"output": str(package.path), "packages": average}, args.json,
         f"{package.card.name}: " + " + ".join(f"{a['weight']:g} × {a['version']}" for a in average)
         + f" → {package.path}")
    return EXIT_OK


# ---------------------------------------------------------------- sentiment
def read_stdin_lines() -> Iterator[tuple[str | None, str | None]]:
    """(text, error) per stdin line; a line that is not UTF-8 gives an error, not a crash."""
    for raw in sys.stdin.buffer:
        raw = raw.rstrip(b"\r\n")
        try:
            yield raw.decode("utf-8"), None
        except UnicodeDecodeError:
            yield None, "line is not valid UTF-8"


def chunks(items, size: int):
    """Lists of up to ``size`` consecutive items."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sentiment_line(result, as_json: bool, explain: bool) -> tuple[dict[str, Any], str]:
    record = result.to_json()
    if not explain:
        record.pop("contributions", None)
    if result.error is not None:
        return record, f"error\t{result.error}"
    return record, f"{result.label}\t{result.score:.4f}\t{result.model}\t{result.text}"


def _cmd_sentiment(args: argparse.Namespace) -> int:
    from .packages import PackageError
    from .services import Sentiment, SentimentResult

    names = ("sentiment-ko", "sentiment-en") if args.model == "auto" else (args.model,)
    try:
        service = Sentiment.load(names)
    except PackageError as exc:
        return fail(str(exc))
    explain = args.explain

    if args.input:
        return _sentiment_file(service, args)

    if args.texts:
        source = ((t, None) for t in args.texts)
    else:
        source = read_stdin_lines()
    for chunk in chunks(source, 2048):
        texts = [t if t is not None else "" for t, _ in chunk]
        try:
            results = service.predict(texts, model=args.model, explain=explain)
        except PackageError as exc:
            return fail(str(exc))
        for (text, error), result in zip(chunk, results):
            if error is not None:
                result = SentimentResult(text="", error=error)
            record, line = _sentiment_line(result, args.json, explain)
            emit(record, args.json, line)
    return EXIT_OK


def _sentiment_file(service, args: argparse.Namespace) -> int:
    import csv

    from .data import CorpusError, read_user_texts

    try:
        rows = list(read_user_texts(args.input, args.column))
    except CorpusError as exc:
        return fail(str(exc))
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else None
    progress = None
    if out is not None:
        from keras.utils import Progbar

        progress = Progbar(len(rows), unit_name="text")
        writer = csv.writer(out)
        writer.writerow(["line", "text", "label", "score", "model", "language", "error"])
    done = 0
    try:
        for chunk in chunks(rows, 2048):
            results = service.predict([t for _, t in chunk], model=args.model, explain=False)
            for (line, text), result in zip(chunk, results):
                if out is not None:
                    writer.writerow([line, text, result.label, f"{result.score:.6f}" if not result.error else "",
                                     result.model, result.language if not result.error else "", result.error or ""])
                else:
                    record, plain = _sentiment_line(result, args.json, False)
                    emit({"line": line, **record}, args.json, plain)
            done += len(chunk)
            if progress is not None:
                progress.update(done)
    finally:
        if out is not None:
            out.close()
    return EXIT_OK


# ---------------------------------------------------------------- eval
def _delimiter(path: str) -> str:
    """CSV files by their extension (``.csv`` / ``.csv.gz``), otherwise TSV."""
    return "," if path.lower().removesuffix(".gz").endswith(".csv") else "\t"


def _labelled_file(path: str, text_column: str, label_column: str) -> tuple[list[str], list[int]]:
    from .data import CorpusError, numbered_rows

    delimiter = _delimiter(path)
    names = {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1}
    texts, labels = [], []
    for line, row in numbered_rows(path, (text_column, label_column), delimiter):
        value = row[label_column].strip().lower()
        if value not in names:
            raise CorpusError(path, f"label {row[label_column]!r} is not 0/1 or negative/positive", line)
        texts.append(row[text_column])
        labels.append(names[value])
    return texts, labels


def _cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import CorpusError
    from .evaluate import classification_report
    from .packages import PackageError, find_package, read_card
    from .services import Sentiment

    try:
        card = read_card(find_package(args.model))
        if card.task == "translation":
            return _eval_translation(args)
        if card.task != "sentiment":
            return fail(f"evaluating {card.task} models is not available: score a text file with "
                        f"'nlpcore score --model {args.model} FILE'", EXIT_UNAVAILABLE)
        service = Sentiment.load([args.model])
        if args.input:
            texts, labels = _labelled_file(args.input, args.text_column, args.label_column)
            split = args.input
        else:
            from .packages import load_package
            from .train.sentiment import SentimentTrainConfig, load_examples

            config = load_package(find_package(args.model)).config(SentimentTrainConfig)
            _, rows, _ = load_examples(config)
            texts, labels = [r.text for r in rows], [r.label for r in rows]
            split = f"validation split of {config.validation_corpus}"
    except (PackageError, CorpusError) as exc:
        return fail(str(exc))
    results = service.predict(texts, model=args.model, explain=False)
    kept = [(r, y) for r, y in zip(results, labels) if r.error is None]
    probs = np.array([[r.probabilities["negative"], r.probabilities["positive"]] for r, _ in kept])
    report = classification_report([y for _, y in kept], probs)
    record = {"model": args.model, "split": split, "skipped": len(results) - len(kept),
              **{k: report[k] for k in ("examples", "accuracy", "precision", "recall", "f1", "confusion_matrix")},
              "ece": report["calibration"]["ece"]}
    emit(record, args.json, json.dumps(record, indent=2, ensure_ascii=False))
    return EXIT_OK


def _eval_translation(args: argparse.Namespace) -> int:
    """BLEU and chrF of a translation package on a parallel file or its validation split."""
    from .data import CorpusError, numbered_rows
    from .packages import PackageError, find_package, load_package
    from .services import TranslateOptions
    from .train.translation import (TranslationTrainConfig, channel_seen, load_pairs, scores_by_origin,
                                    split_description)
    from .translation import TranslationModel

    try:
        package = load_package(find_package(args.model))
        config = package.config(TranslationTrainConfig)
        pairs = None  # the validation split's pairs (with their origins), when scoring that
        if args.input:
            columns = (args.source_column or config.source, args.target_column or config.target)
            rows = [row for _, row in numbered_rows(args.input, columns, _delimiter(args.input))]
            sources, references = [r[columns[0]] for r in rows], [r[columns[1]] for r in rows]
            split = args.input
        else:
            _, pairs, _ = load_pairs(config, extras=False)
            sources, references = [p.source for p in pairs], [p.target for p in pairs]
            split = f"validation split of {config.corpus} ({split_description(config)})"
        model = TranslationModel.from_package(package)
        options = TranslateOptions(beam_size=args.beam, length_penalty=args.length_penalty, stopping=args.stopping,
                                   channel_weight=args.channel_weight)
        seen = None  # validation pairs the reranking model was trained on
        if pairs is not None and model.reranking_weight(options):
            seen, total = channel_seen(config, model.channel.train_config, validation=pairs)
            if seen:
                sys.stderr.write(f"nlpcore: warning: {model.channel.name}, which reranks the hypotheses, was "
                                 f"trained on {seen:,} of these {total:,} pairs: the reranked scores overstate "
                                 f"what reranking does for new text\n")
        scores, hypotheses = model.evaluate(sources, references, options)
        if pairs is not None and (by_origin := scores_by_origin(pairs, hypotheses, config.corpus)):
            scores["by_origin"] = by_origin  # a corpus of several sources: each one's figures too
    except (PackageError, CorpusError, ValueError) as exc:
        return fail(str(exc))
    record = {"model": args.model, "split": split, **scores,
              **({"channel_seen_pairs": seen} if seen is not None else {})}
    emit(record, args.json, json.dumps(record, indent=2, ensure_ascii=False))
    return EXIT_OK


# ---------------------------------------------------------------- bench
def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench
    from .packages import PackageError

    runners = {"sentiment": bench.bench_sentiment, "generate": bench.bench_generate,
               "translate": lambda: bench.bench_translate(args.direction)}
    try:
        record = runners[args.what]()
    except PackageError as exc:
        return fail(str(exc))
    path = bench.write_record(record, args.what)
    emit({**record, "written": str(path)}, args.json, json.dumps(record, indent=2, ensure_ascii=False))
    return EXIT_OK


# ---------------------------------------------------------------- translate, generate, score
def _delegate(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports ``module`` only when its subcommand runs."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return handler


# ---------------------------------------------------------------- train
TRAINERS = {
    "sentiment": ("nlpcore.train.sentiment", "SentimentTrainConfig"),
    "translation": ("nlpcore.train.translation", "TranslationTrainConfig"),
    "lm": ("nlpcore.train.lm", "LMTrainConfig"),
}


def _cmd_train(args: argparse.Namespace) -> int:
    import importlib

    from .config import ConfigError, load_config

    if args.task not in TRAINERS:
        return fail(f"training '{args.task}' models is not available in this version yet", EXIT_UNAVAILABLE)
    module_name, config_name = TRAINERS[args.task]
    module = importlib.import_module(module_name)
    try:
        config = load_config(getattr(module, config_name), args.config)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    from .train.common import use_compilation_cache

    cache = use_compilation_cache()
    if cache is not None:
        sys.stderr.write(f"nlpcore: compiled steps are cached in {cache}\n")
    module.train(config, resume=args.resume, output=args.output)
    return EXIT_OK


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlpcore",
        description="Malbeot's recurrent NLP models: sentiment, translation and generation, offline.",
    )
    parser.add_argument("--version", action="version", version=f"nlpcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="write one JSON object per line")
        p.set_defaults(handler=handler)
        return p

    p = command("train", "train a model from a YAML config and write a model package", _cmd_train)
    p.add_argument("task", choices=["sentiment", "translation", "lm"], help="what to train")
    p.add_argument("--config", required=True, help="YAML config file")
    p.add_argument("--output", help="package folder to write (default: from the config)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")

    p = command("eval", "evaluate a sentiment or translation package on a labelled/parallel file or its "
                        "validation split", _cmd_eval)
    p.add_argument("--model", required=True, help="package name or folder")
    p.add_argument("--input", help="labelled TSV/CSV file with a header (default: the package's validation split)")
    p.add_argument("--text-column", default="text", help="text column of --input (default: text)")
    p.add_argument("--label-column", default="label", help="label column of --input: 0/1 or negative/positive")
    p.add_argument("--source-column", help="translation: source column of --input (default: the source language code)")
    p.add_argument("--target-column", help="translation: reference column of --input (default: the target language code)")
    p.add_argument("--beam", type=int, default=5, help="translation: beam size (default 5)")
    p.add_argument("--length-penalty", type=float, metavar="ALPHA",
                   help="translation: GNMT length penalty, 0 for none (default: the package's own)")
    from .decoding.search import BEAM_STOPPING  # NumPy only
    from .services import TranslateOptions

    p.add_argument("--stopping", choices=BEAM_STOPPING, default=TranslateOptions.stopping,
                   help="translation: when a beam search stops: once no live beam beats the best finished "
                        "hypothesis at its next length (current, the default) or at any length (exact)")
    p.add_argument("--channel-weight", type=float, metavar="WEIGHT",
                   help="translation: weight of the reverse-direction model when reranking the beam's "
                        "hypotheses, 0 for none (default: the package's own)")

    p = command("sentiment", "classify texts as positive or negative", _cmd_sentiment)
    p.add_argument("--model", default="auto", help="sentiment-ko, sentiment-en or auto (by script; default)")
    p.add_argument("--explain", action="store_true", help="add per-word contributions (JSON: [word, score] pairs)")
    p.add_argument("--input", help="CSV/TSV/TXT file to classify in bulk")
    p.add_argument("--column", help="text column of --input")
    p.add_argument("--output", help="CSV file to write for --input")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (default: one per line from stdin)")

    p = command("translate", "translate sentences", _delegate("nlpcore.translation", "cli_translate"))
    p.add_argument("--src", required=True, choices=["en", "fr", "ko"], help="source language")
    p.add_argument("--tgt", required=True, choices=["en", "fr", "ko"], help="target language")
    p.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy; default 5)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="sentences (default: one per line from stdin)")

    from .train.backtranslation import MONOLINGUAL  # names only: no framework is imported

    p = command("backtranslate", "translate a monolingual corpus into synthetic training pairs "
                                 "(back-translation, for a translation config's extra_corpora)",
                _delegate("nlpcore.train.backtranslation", "cli_backtranslate"))
    p.add_argument("--model", required=True, help="translation package of the reverse direction (e.g. "
                                                   "translate-ko-en for Korean text, to train en→ko)")
    p.add_argument("--corpus", required=True, choices=sorted(MONOLINGUAL),
                   help="monolingual corpus: " + "; ".join(f"{k}: {v.description}" for k, v in MONOLINGUAL.items()))
    p.add_argument("--output", required=True, help="TSV file to write (a .json record is written beside it)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    p.add_argument("--limit", type=int, default=0, help="translate this many sentences, drawn at random (0 = all)")

    p = command("generate", "generate text from a prompt", _delegate("nlpcore.generation", "cli_generate"))
    p.add_argument("--model", default="generate-en", help="generate-en or generate-ko")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-tokens", type=int, default=200, help="new pieces to generate")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely pieces (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--seed", type=int, help="random seed for repeatable output")
    p.add_argument("--sampler", choices=["greedy", "temperature", "top_k", "top_p"], help="how the next piece is picked")
    p.add_argument("--repetition-penalty", type=float, default=1.1, help=">1 discourages repeating pieces")
    p.add_argument("--stop", action="append", help="stop string (repeatable; not included in the output)")

    p = command("score", "negative log-likelihood of a text file under a language model",
                _delegate("nlpcore.generation", "cli_score"))
    p.add_argument("--model", required=True, help="language model package")
    p.add_argument("file", help="UTF-8 text file")

    p = command("models", "list, show, verify, install or average model packages", _cmd_models)
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "verify", "install", "average"])
    p.add_argument("target", nargs="*", help="package name, or a package folder for install; average: two or more")
    p.add_argument("--output", help="average: the folder to write the averaged package to")
    p.add_argument("--weights", help="average: comma-separated weight per package (default: equal)")

    p = command("bench", "run a speed benchmark against the naive Keras path", _cmd_bench)
    p.add_argument("what", choices=["sentiment", "translate", "generate"], help="which service")
    p.add_argument("--direction", action="append",
                   help="translate: a direction such as en-fr (repeatable; default: every installed one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
    if args.command != "train":
        # Inference runs in NumPy; TensorFlow only loads the weights, and without
        # its oneDNN kernels it starts silently.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
