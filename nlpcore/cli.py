"""The ``nlpcore`` command line: thin argparse subcommands over the library.

Every subcommand accepts ``--json`` for JSON-lines output (one object per
line). Exit codes: 0 success, 1 an error the message explains, 2 bad usage,
3 a subcommand this version does not provide yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

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
    if not args.target:
        return fail(f"models {args.action} needs a package name or folder", EXIT_USAGE)
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

    p = command("train", "train a model from a YAML config and write a model package", _unavailable("train"))
    p.add_argument("task", choices=["sentiment", "translation", "lm"], help="what to train")
    p.add_argument("--config", required=True, help="YAML config file")
    p.add_argument("--output", help="package folder to write (default: from the config)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")

    p = command("eval", "evaluate a model package on a labelled file or its validation split", _unavailable("eval"))
    p.add_argument("--model", required=True, help="package name or folder")
    p.add_argument("--input", help="labelled file (default: the package's validation split)")

    p = command("sentiment", "classify texts as positive or negative", _unavailable("sentiment"))
    p.add_argument("--model", default="auto", help="sentiment-ko, sentiment-en or auto (by script; default)")
    p.add_argument("--input", help="CSV/TSV/TXT file to classify in bulk")
    p.add_argument("--column", help="text column of --input")
    p.add_argument("--output", help="CSV file to write for --input")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (default: one per line from stdin)")

    p = command("translate", "translate sentences", _unavailable("translate"))
    p.add_argument("--src", required=True, choices=["en", "fr", "ko"], help="source language")
    p.add_argument("--tgt", required=True, choices=["en", "fr", "ko"], help="target language")
    p.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy; default 5)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="sentences (default: one per line from stdin)")

    p = command("generate", "generate text from a prompt", _unavailable("generate"))
    p.add_argument("--model", default="generate-en", help="generate-en or generate-ko")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-tokens", type=int, default=200, help="new pieces to generate")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely pieces (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--seed", type=int, help="random seed for repeatable output")

    p = command("score", "negative log-likelihood of a text file under a language model", _unavailable("score"))
    p.add_argument("--model", required=True, help="language model package")
    p.add_argument("file", help="UTF-8 text file")

    p = command("models", "list, show, verify or install model packages", _cmd_models)
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "verify", "install"])
    p.add_argument("target", nargs="?", help="package name, or a package folder for install")

    p = command("bench", "run a speed benchmark against the naive Keras path", _unavailable("bench"))
    p.add_argument("what", choices=["sentiment", "translate", "generate"], help="which service")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
