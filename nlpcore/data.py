"""Corpus readers, user-file readers and deterministic splits.

Every shipped corpus lives in ``../shared/data`` next to a source checkout (or
wherever ``MALBEOT_DATA`` points) as gzip-compressed UTF-8: tables are
tab-separated with a header row, free text is plain. Readers stream rows and
raise :class:`CorpusError` naming the file, the line and the reason when a file
is malformed.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CorpusError(ValueError):
    """A data file is missing or malformed."""

    def __init__(self, path: str | os.PathLike, reason: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


# ------------------------------------------------------------------ low level
def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Open a UTF-8 text file, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(path, "file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, "rt", encoding="utf-8-sig", newline="")


def _decode_guard(path: Path, rows: Iterator[T], line_of: Callable[[], int]) -> Iterator[T]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise CorpusError(path, f"not valid UTF-8 ({exc.reason})", line_of() + 1) from None
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip
        raise CorpusError(path, f"cannot read file: {exc}") from None
    except csv.Error as exc:
        raise CorpusError(path, f"malformed field: {exc}", line_of()) from None


def read_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    delimiter: str = "\t",
) -> Iterator[dict[str, str]]:
    """Rows of a delimited file with a header, as dicts.

    columns: the columns the caller needs; a header lacking one is an error.
    Rows whose field count differs from the header's are errors. Blank lines
    are skipped.
    """
    for _, row in numbered_rows(path, columns, delimiter):
        yield row


def numbered_rows(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    delimiter: str = "\t",
) -> Iterator[tuple[int, dict[str, str]]]:
    """Like :func:`read_table`, with the file line each row ends on."""
    path = Path(path)
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        rows = _decode_guard(path, iter(reader), lambda: reader.line_num)
        header = next(rows, None)
        if header is None:
            raise CorpusError(path, "empty file (a header row is required)")
        header = [h.strip() for h in header]
        if columns is not None:
            missing = [c for c in columns if c not in header]
            if missing:
                raise CorpusError(
                    path, f"no column(s) {', '.join(map(repr, missing))}; the header has: {', '.join(header)}", 1
                )
        width = len(header)
        for row in rows:
            if not row:
                continue
            if len(row) != width:
                raise CorpusError(
                    path, f"expected {width} fields ({', '.join(header)}) but found {len(row)}", reader.line_num
                )
            yield reader.line_num, dict(zip(header, row))


def read_lines(path: str | os.PathLike) -> Iterator[str]:
    """Lines of a text file without their line endings."""
    path = Path(path)
    with open_text(path) as handle:
        state = {"n": 0}

        def lines() -> Iterator[str]:
            for state["n"], line in enumerate(handle, 1):
                yield line.rstrip("\r\n")

        yield from _decode_guard(path, lines(), lambda: state["n"])


def read_text(path: str | os.PathLike) -> str:
    """A whole text file as one string (newlines normalised to ``\\n``)."""
    return "\n".join(read_lines(path))


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class LabeledText:
    """A text with a class label (sentiment: 1 positive, 0 negative)."""

    text: str
    label: int
    id: str = ""


@dataclass(frozen=True)
class Pair:
    """A source sentence and its translation."""

    source: str
    target: str
    origin: str = ""
    license: str = ""


def _label(path: Path, value: str, line: int, allowed: Sequence[int] = (0, 1)) -> int:
    try:
        label = int(value)
    except ValueError:
        raise CorpusError(path, f"label {value!r} is not an integer", line) from None
    if label not in allowed:
        raise CorpusError(path, f"label {label} is not one of {list(allowed)}", line)
    return label


# ------------------------------------------------------------------ corpora
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")


def clean_review(text: str) -> str:
    """Strip IMDB's ``<br />`` tags and squeeze runs of spaces."""
    return _SPACES.sub(" ", _BR.sub(" ", text)).strip()


def read_nsmc(path: str | os.PathLike, keep_empty: bool = False) -> Iterator[LabeledText]:
    """NSMC: id, text, label (1 positive, 0 negative)."""
    path = Path(path)
    for line, row in numbered_rows(path, ("id", "text", "label")):
        text = row["text"].strip()
        if not text and not keep_empty:
            continue
        yield LabeledText(text, _label(path, row["label"], line), row["id"])


def rating_to_label(rating: int) -> int | None:
    """NSMC's rule: ratings 1–4 are negative, 9–10 positive, the rest unused."""
    if 1 <= rating <= 4:
        return 0
    if 9 <= rating <= 10:
        return 1
    return None


def read_nsmc_ratings(path: str | os.PathLike, unlabelled: bool = False) -> Iterator[LabeledText]:
    """The raw NSMC crawl (id, movie_id, rating, text), labelled by :func:`rating_to_label`.

    unlabelled: also yield the reviews NSMC's rule leaves out (ratings 5–8), with label -1.
    """
    path = Path(path)
    for line, row in numbered_rows(path, ("id", "rating", "text")):
        rating = _label(path, row["rating"], line, allowed=range(1, 11))
        label = rating_to_label(rating)
        text = row["text"].strip()
        if label is None and unlabelled:
            label = -1
        if label is None or not text:
            continue
        yield LabeledText(text, label, row["id"])


def read_imdb(path: str | os.PathLike) -> Iterator[LabeledText]:
    """IMDB reviews: id, text, label, rating; ``<br />`` tags removed."""
    path = Path(path)
    for line, row in numbered_rows(path, ("id", "text", "label")):
        yield LabeledText(clean_review(row["text"]), _label(path, row["label"], line), row["id"])


def read_parallel(path: str | os.PathLike, source: str, target: str) -> Iterator[Pair]:
    """Sentence pairs from a table with one column per language code.

    ``read_parallel(p, "en", "fr")`` and ``read_parallel(p, "fr", "en")`` read
    the same file in both directions. Pairs with an empty side are skipped.
    """
    path = Path(path)
    with_meta = None
    for row in read_table(path, (source, target)):
        if with_meta is None:
            with_meta = "source" in row and "license" in row
        src, tgt = row[source].strip(), row[target].strip()
        if not src or not tgt:
            continue
        yield Pair(src, tgt, row.get("source", "") if with_meta else "", row.get("license", "") if with_meta else "")


def read_chatbot(path: str | os.PathLike) -> Iterator[tuple[str, str, int]]:
    """Korean chatbot pairs: (question, answer, label 0 daily / 1 negative / 2 positive)."""
    path = Path(path)
    for line, row in numbered_rows(path, ("question", "answer", "label")):
        yield row["question"].strip(), row["answer"].strip(), _label(path, row["label"], line, (0, 1, 2))


_GUTENBERG_TITLE = re.compile(r"^=== (?P<title>.+) ===$")
_KOCONOVEL_TITLE = re.compile(r"^### (?P<title>.+)$")


def split_documents(lines: Iterable[str], title: re.Pattern[str]) -> Iterator[tuple[str, str]]:
    """(title, body) for each document in a file whose documents start with a title line."""
    current, body = None, []
    for line in lines:
        match = title.match(line)
        if match:
            if current is not None:
                yield current, "\n".join(body).strip("\n")
            current, body = match.group("title").strip(), []
        else:
            body.append(line)
    if current is not None:
        yield current, "\n".join(body).strip("\n")


def read_gutenberg(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """(``Title — Author``, text) for each book."""
    return split_documents(read_lines(path), _GUTENBERG_TITLE)


def read_koconovel(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """(title, text) for each novel."""
    return split_documents(read_lines(path), _KOCONOVEL_TITLE)


# ------------------------------------------------------------------ where the corpora are
@dataclass(frozen=True)
class Corpus:
    name: str
    relpath: str
    kind: str  # "labels", "ratings", "parallel", "chat", "text", "books"
    description: str


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus("nsmc", "sentiment/nsmc_train.tsv.gz", "labels", "Korean movie reviews (NSMC train split)"),
        Corpus("nsmc_raw", "sentiment/nsmc_raw_ratings.tsv.gz", "ratings", "Korean reviews with 1–10 ratings"),
        Corpus("imdb", "sentiment/imdb_train.tsv.gz", "labels", "English movie reviews (IMDB train split)"),
        Corpus("en-fr", "translation/en-fr.tsv.gz", "parallel", "English–French Tatoeba pairs"),
        Corpus("ko-en", "translation/ko-en.tsv.gz", "parallel", "Korean–English pairs (mixed licenses)"),
        Corpus("tinyshakespeare", "generation/tinyshakespeare_train.txt.gz", "text", "tinyshakespeare, first 90 %"),
        Corpus("gutenberg", "generation/gutenberg_train.txt.gz", "books", "28 English classics"),
        Corpus("koconovel", "generation/koconovel_train.txt.gz", "books", "45 modern Korean novels"),
        Corpus("ko_chatbot", "chat/ko_chatbot.tsv.gz", "chat", "Korean everyday Q→A pairs"),
    )
}


def data_dir() -> Path:
    """The corpus folder: ``$MALBEOT_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("MALBEOT_DATA")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parent.parent
    for candidate in (root.parent / "shared" / "data", root / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "data"


def corpus_path(name: str) -> Path:
    """Path of a named corpus (see :data:`CORPORA`) or of a file given directly."""
    if name in CORPORA:
        return data_dir() / CORPORA[name].relpath
    path = Path(name)
    if path.exists():
        return path
    raise CorpusError(name, f"unknown corpus; known: {', '.join(CORPORA)}")


# ------------------------------------------------------------------ user files
def read_user_texts(path: str | os.PathLike, column: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) from a user's TXT (one text per line), CSV or TSV file.

    CSV/TSV files need a header; ``column`` picks the text column (default: a
    column named ``text``, else the only column). Empty texts are yielded too,
    so outputs stay aligned with inputs.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    kind = suffixes[-1] if suffixes else ".txt"
    if kind not in (".csv", ".tsv", ".txt", ".tab"):
        raise CorpusError(path, f"unsupported file type {kind!r}: use .txt, .csv or .tsv")
    if kind == ".txt":
        for n, line in enumerate(read_lines(path), 1):
            yield n, line
        return
    delimiter = "," if kind == ".csv" else "\t"
    if column is None:
        header = read_header(path, delimiter)
        column = "text" if "text" in header else (header[0] if len(header) == 1 else None)
        if column is None:
            raise CorpusError(path, f"several columns ({', '.join(header)}): choose one with --column", 1)
    for line, row in numbered_rows(path, (column,), delimiter):
        yield line, row[column]


def read_header(path: str | os.PathLike, delimiter: str = "\t") -> list[str]:
    """The column names of a delimited file."""
    path = Path(path)
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(_decode_guard(path, iter(reader), lambda: reader.line_num), None)
    if header is None:
        raise CorpusError(path, "empty file (a header row is required)")
    return [h.strip() for h in header]


# ------------------------------------------------------------------ splits
def split_fraction(key: str, salt: str = "malbeot") -> float:
    """A stable pseudo-random number in [0, 1) for a key (BLAKE2b of salt + key)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_validation(key: str, fraction: float, salt: str = "malbeot") -> bool:
    """Whether the item with this key belongs to the validation split."""
    return split_fraction(key, salt) < fraction


def train_validation_split(
    items: Iterable[T],
    fraction: float = 0.1,
    key: Callable[[T], str] = str,
    salt: str = "malbeot",
) -> tuple[list[T], list[T]]:
    """Split by hashing each item's key: deterministic, independent of order and
    of the other items, and identical keys (duplicate texts) always land on the
    same side, so duplicates cannot leak from training into validation."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), not {fraction}")
    train: list[T] = []
    validation: list[T] = []
    for item in items:
        (validation if is_validation(key(item), fraction, salt) else train).append(item)
    return train, validation


def bucket_by_length(lengths: Sequence[int], batch_size: int, seed: int = 0) -> list[list[int]]:
    """Batches of indices with similar lengths (less padding), in shuffled order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = np.argsort(np.asarray(lengths) + rng.random(len(lengths)), kind="stable")
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches
