"""Model packages: a folder with ``card.json``, the config, weights and tokenizers.

Layout of a package folder::

    <name>/
      card.json        what the model is (see :class:`ModelCard`) + size and sha256 of every file
      config.yaml      the frozen config the model is rebuilt from
      *.keras          uncompiled Keras models (loaded with ``safe_mode=True``)
      *.model          SentencePiece tokenizers
      ...              anything else the card lists (plots, reports)

:func:`load_package` verifies every listed file's size and SHA-256 before
anything is deserialised and refuses an incomplete or corrupted package with
an error naming the file. Models are saved uncompiled, so a package written
under one Keras backend loads under any other.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from . import assets
from .config import ConfigError, from_dict, to_yaml
from .tokenizer import Tokenizer

if TYPE_CHECKING:  # keras is imported only when a model is saved or loaded
    import keras

FORMAT_VERSION = 1
CARD_FILE = "card.json"
CONFIG_FILE = "config.yaml"
TASKS = ("sentiment", "translation", "generation", "test")


class PackageError(ValueError):
    """A model package is missing, incomplete or corrupted."""


@dataclass(frozen=True)
class DataSource:
    """One corpus a model was trained on."""

    name: str
    rows: int = 0
    license: str = ""
    notes: str = ""


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelCard:
    """What a model package is; written to ``card.json``.

    metrics: ``{split name: {metric: value}}``; the split name says what the
        figures were measured on (e.g. ``"validation (10 % hash split of NSMC train)"``).
    files: relative path → size and sha256, filled in when the package is written.
    backend: the Keras backend the weights were trained on.
    """

    name: str
    task: str
    languages: tuple[str, ...]
    version: str = "1.0.0"
    description: str = ""
    created: str = ""
    data: tuple[DataSource, ...] = ()
    license: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    backend: str = ""
    keras_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())

    def to_json(self) -> str:
        body = dataclasses.asdict(self)
        body["languages"] = list(self.languages)
        body["size_bytes"] = self.size_bytes
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = CARD_FILE) -> "ModelCard":
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PackageError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise PackageError(f"{where}: expected a JSON object")
        body.pop("size_bytes", None)
        files = body.pop("files", {})
        try:
            card = from_dict(cls, body, where)
            parsed = {str(k): from_dict(FileEntry, v, f"{where}: files[{k!r}]") for k, v in dict(files).items()}
        except (ConfigError, TypeError, ValueError) as exc:
            raise PackageError(str(exc)) from None
        return dataclasses.replace(card, files=parsed)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- verification
def read_card(path: str | os.PathLike) -> ModelCard:
    """The card of a package folder, without checking its files."""
    path = Path(path)
    card_path = path / CARD_FILE
    if not path.is_dir():
        raise PackageError(f"model package not found: {path}")
    if not card_path.is_file():
        raise PackageError(f"{card_path}: missing; not a model package")
    card = ModelCard.from_json(card_path.read_text(encoding="utf-8"), str(card_path))
    if card.format_version > FORMAT_VERSION:
        raise PackageError(
            f"{card_path}: package format {card.format_version} is newer than this app supports "
            f"({FORMAT_VERSION}); update Malbeot"
        )
    if card.task not in TASKS:
        raise PackageError(f"{card_path}: unknown task {card.task!r}")
    if CONFIG_FILE not in card.files:
        raise PackageError(f"{card_path}: the card lists no {CONFIG_FILE}")
    return card


def verify_package(path: str | os.PathLike) -> ModelCard:
    """Check that every file the card lists is present with its size and SHA-256."""
    path = Path(path)
    card = read_card(path)
    root = path.resolve()
    for rel, entry in card.files.items():
        file_path = (path / rel).resolve()
        if root not in file_path.parents:
            raise PackageError(f"{path / CARD_FILE}: file entry {rel!r} points outside the package")
        if not file_path.is_file():
            raise PackageError(f"{path / rel}: missing from the package (listed in {CARD_FILE})")
        size = file_path.stat().st_size
        if size != entry.size:
            raise PackageError(f"{path / rel}: corrupted or incomplete ({size} bytes, the card says {entry.size})")
        if sha256_file(file_path) != entry.sha256:
            raise PackageError(f"{path / rel}: corrupted (SHA-256 does not match the card)")
    return card


# ---------------------------------------------------------------- the package
class Package:
    """A verified model package. Models and tokenizers load on first use."""

    def __init__(self, path: str | os.PathLike, card: ModelCard):
        self.path = Path(path)
        self.card = card
        self._tokenizers: dict[str, Tokenizer] = {}

    @property
    def name(self) -> str:
        return self.card.name

    def __repr__(self) -> str:
        return f"Package({self.card.name!r}, task={self.card.task!r}, path={str(self.path)!r})"

    def file(self, rel: str) -> Path:
        if rel not in self.card.files:
            raise PackageError(f"{self.path}: the package has no file {rel!r}")
        return self.path / rel

    def config(self, cls: type) -> Any:
        """The package's config as dataclass ``cls``."""
        from .config import from_yaml

        try:
            return from_yaml(cls, self.file(CONFIG_FILE).read_text(encoding="utf-8"), str(self.file(CONFIG_FILE)))
        except ConfigError as exc:
            raise PackageError(str(exc)) from None

    def tokenizer(self, name: str = "tokenizer") -> Tokenizer:
        if name not in self._tokenizers:
            self._tokenizers[name] = Tokenizer.load(self.file(f"{name}.model"))
        return self._tokenizers[name]

    def load_model(self, name: str = "model") -> "keras.Model":
        """Load ``<name>.keras`` with ``safe_mode=True`` (no arbitrary code)."""
        import keras

        from . import models  # noqa: F401  registers the project's layers

        path = self.file(f"{name}.keras")
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # keras raises many kinds; the user needs the file name
            raise PackageError(f"{path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from exc


def load_package(path: str | os.PathLike) -> Package:
    """Verify and open the package folder at ``path``."""
    return Package(path, verify_package(path))


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A temporary sibling folder that replaces ``target`` if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def as_stored(weights: list, weights_dtype: str, mantissa_bits: int = 10) -> list:
    """Model weights as a package with ``weights_dtype`` (and ``mantissa_bits``)
    will give them back (float32 values rounded through float16 for
    ``"float16"``), so a trainer can score exactly what it ships."""
    import numpy as np

    if weights_dtype != "float16":
        return list(weights)
    return [round_mantissa(w.astype(np.float16), mantissa_bits).astype(w.dtype) if w.dtype == np.float32 else w
            for w in weights]


FLOAT16_MANTISSA_BITS = 10


def round_mantissa(values, bits: int = FLOAT16_MANTISSA_BITS):
    """float16 ``values`` rounded to the nearest number with only the top
    ``bits`` of the 10-bit mantissa set (10: unchanged). Each bit dropped
    doubles the relative rounding error (2**-11 for float16) and leaves a
    zero bit that the gzip filter of :func:`store_weights_as_float16` packs
    away: about 1/16 of a large weight file per bit."""
    import numpy as np

    if not 1 <= bits <= FLOAT16_MANTISSA_BITS:
        raise ValueError(f"mantissa bits must be 1 to {FLOAT16_MANTISSA_BITS}, not {bits}")
    if bits == FLOAT16_MANTISSA_BITS:
        return values
    drop = FLOAT16_MANTISSA_BITS - bits
    raw = np.asarray(values, np.float16).view(np.uint16).astype(np.uint32)
    # Adding half of the dropped unit and masking rounds the magnitude to
    # nearest; a carry runs into the exponent, which is the right result.
    raw = (raw + (1 << (drop - 1))) & (0xFFFF & ~((1 << drop) - 1))
    return raw.astype(np.uint16).view(np.float16)


COMPRESSED_SIZE = 4096  # values; smaller arrays are not worth a filter


def store_weights_as_float16(keras_file: Path, mantissa_bits: int = FLOAT16_MANTISSA_BITS) -> None:
    """Rewrite the float32 weights inside a ``.keras`` file as float16, in place.

    The model's layers keep their float32 dtype: loading casts the stored
    values back to float32, so the file halves and the model computes as before
    (with weights rounded to float16's 11-bit mantissa). Arrays of
    ``COMPRESSED_SIZE`` values or more are also stored with HDF5's byte-shuffle
    and gzip filters, which h5py undoes on reading: lossless, about 9 % off a
    translation model (the exponent bytes of float16 weights repeat). With
    ``mantissa_bits`` below 10 every float16 array is also rounded by
    :func:`round_mantissa` (lossy; a file already stored as float16 can be
    rewritten so).
    """
    import io
    import zipfile

    import h5py
    import numpy as np

    def convert(blob: bytes) -> bytes:
        source, target = io.BytesIO(blob), io.BytesIO()
        with h5py.File(source, "r") as fin, h5py.File(target, "w") as fout:
            for key, value in fin.attrs.items():
                fout.attrs[key] = value

            def copy(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    data = obj[()]
                    data = data.astype(np.float16) if data.dtype == np.float32 else data
                    data = round_mantissa(data, mantissa_bits) if data.dtype == np.float16 else data
                    packed = {"compression": "gzip", "shuffle": True} if data.size >= COMPRESSED_SIZE else {}
                    fout.create_dataset(name, data=data, **packed)
                else:
                    fout.require_group(name)
                for key, value in obj.attrs.items():
                    fout[name].attrs[key] = value

            fin.visititems(copy)
        return target.getvalue()

    converted = keras_file.with_suffix(".f16.tmp")
    with zipfile.ZipFile(keras_file) as zin, zipfile.ZipFile(converted, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            blob = zin.read(item.filename)
            zout.writestr(item, convert(blob) if item.filename.endswith(".h5") else blob)
    converted.replace(keras_file)


def write_package(
    path: str | os.PathLike,
    card: ModelCard,
    config: Any,
    models: Mapping[str, "keras.Model"] = {},
    tokenizers: Mapping[str, Tokenizer] = {},
    files: Mapping[str, bytes | Path] = {},
    weights_dtype: str = "float32",
    mantissa_bits: int = FLOAT16_MANTISSA_BITS,
) -> Package:
    """Write a complete package to ``path`` (replacing what is there) and return it.

    The package is assembled in a temporary sibling folder and moved into
    place, so a crash never leaves a half-written package under ``path``.
    ``config`` is written as ``config.yaml``; None when ``files`` brings one.
    ``created``, ``backend``, ``keras_version`` and ``files`` of the card are
    filled in here. ``weights_dtype="float16"`` stores the weights at half
    size (see :func:`store_weights_as_float16`), with ``mantissa_bits`` of
    float16's 10 kept (fewer: a smaller file, see :func:`round_mantissa`).
    """
    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"weights_dtype must be float32 or float16, not {weights_dtype!r}")
    import keras

    path = Path(path)
    with _staged(path) as staging:
        if config is not None:  # else ``files`` brings config.yaml
            (staging / CONFIG_FILE).write_text(to_yaml(config), encoding="utf-8")
        for name, model in models.items():
            model.save(staging / f"{name}.keras")
            if weights_dtype == "float16":
                store_weights_as_float16(staging / f"{name}.keras", mantissa_bits)
        for name, tokenizer in tokenizers.items():
            tokenizer.save(staging / f"{name}.model")
        for rel, content in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, (bytes, bytearray)):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
        entries = {
            p.relative_to(staging).as_posix(): FileEntry(p.stat().st_size, sha256_file(p))
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        card = dataclasses.replace(
            card,
            created=card.created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            backend=keras.backend.backend(),
            keras_version=keras.__version__,
            files=entries,
            format_version=FORMAT_VERSION,
            extra={**card.extra, "weights_dtype": weights_dtype,
                   **({"weights_mantissa_bits": mantissa_bits} if mantissa_bits < FLOAT16_MANTISSA_BITS
                      and weights_dtype == "float16" else {})},
        )
        (staging / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    return load_package(path)


def average_packages(sources: Sequence[str | os.PathLike], output: str | os.PathLike,
                     weights: Sequence[float] | None = None) -> Package:
    """Write to ``output`` a package whose models' weights are the average of
    those of ``sources`` (weighted by ``weights``, else uniform): a weight
    average, or model soup (Wortsman et al. 2022), of packages of one
    architecture and the same tokenizers, such as a package and a fine-tune
    of it. The first package's config and files are kept, its card gains
    ``extra.weight_average.packages`` (each package, version and weight) and
    the data of the others; its metrics are the first's until it is scored.
    """
    import numpy as np

    loaded = [load_package(find_package(source)) for source in sources]
    if len(loaded) < 2:
        raise PackageError("averaging needs two packages or more")
    weights = [1.0] * len(loaded) if weights is None else [float(w) for w in weights]
    if len(weights) != len(loaded) or min(weights) < 0 or sum(weights) <= 0:
        raise PackageError(f"give one weight of 0 or more per package ({len(loaded)}), not {list(weights)}")
    weights = [w / sum(weights) for w in weights]
    first = loaded[0]
    keras_files = sorted(rel for rel in first.card.files if rel.endswith(".keras"))
    for other in loaded[1:]:
        where = f"{other.card.name} {other.card.version} ({other.path})"
        if other.card.task != first.card.task or other.card.license != first.card.license:
            raise PackageError(f"{where}: another task or license than {first.card.name}'s")
        if sorted(rel for rel in other.card.files if rel.endswith(".keras")) != keras_files:
            raise PackageError(f"{where}: other model files than {first.card.name}'s")
        for rel, entry in first.card.files.items():  # the tokenizers the weights were trained with
            if rel.endswith(".model") and other.card.files.get(rel, FileEntry(0, "")).sha256 != entry.sha256:
                raise PackageError(f"{where}: its {rel} differs from {first.card.name}'s; averaged weights "
                                   "need the same tokenizers")
    models = {}
    for rel in keras_files:
        name = rel[: -len(".keras")]
        members = [package.load_model(name) for package in loaded]
        stacks = [m.get_weights() for m in members]
        if any([w.shape for w in s] != [w.shape for w in stacks[0]] for s in stacks[1:]):
            raise PackageError(f"{rel}: the packages' models differ in shape")
        members[0].set_weights([sum(k * np.asarray(w, np.float64) for k, w in zip(weights, ws)).astype(ws[0].dtype)
                                for ws in zip(*stacks)])
        models[name] = members[0]
    data = list(first.card.data)
    data += [d for other in loaded[1:] for d in other.card.data if d not in data]
    card = dataclasses.replace(first.card, created="", data=tuple(data), extra={
        **first.card.extra,
        "weight_average": {"packages": [{"name": p.card.name, "version": p.card.version, "weight": round(w, 4)}
                                        for p, w in zip(loaded, weights)]}})
    files = {rel: first.path / rel for rel in first.card.files if not rel.endswith(".keras")}
    return write_package(output, card, None, models=models, files=files,
                         weights_dtype=first.card.extra.get("weights_dtype", "float32"),
                         mantissa_bits=first.card.extra.get("weights_mantissa_bits", FLOAT16_MANTISSA_BITS))


def update_card(path: str | os.PathLike, **changes: Any) -> ModelCard:
    """Change descriptive fields of a package's card (``description``, ``metrics``,
    ``extra``, …); the files and their hashes stay as they are, and are verified first."""
    path = Path(path)
    card = verify_package(path)
    forbidden = {"files", "format_version", "name", "task"} & set(changes)
    if forbidden:
        raise PackageError(f"{', '.join(sorted(forbidden))} of a package cannot be changed")
    card = dataclasses.replace(card, **changes)
    (path / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    return card


# ---------------------------------------------------------------- discovery
def iter_packages() -> Iterator[tuple[Path, ModelCard | PackageError]]:
    """Every package folder in the model folders, with its card or the error reading it.

    User models come first and hide shipped ones of the same name.
    """
    seen: set[str] = set()
    for root in assets.model_dirs():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in seen:
                continue
            seen.add(folder.name)
            try:
                yield folder, read_card(folder)
            except PackageError as exc:
                yield folder, exc


def find_package(name: str) -> Path:
    """The folder of the installed package called ``name`` (or a path to one)."""
    direct = Path(name)
    if (direct / CARD_FILE).is_file():
        return direct
    for root in assets.model_dirs():
        candidate = root / name
        if candidate.is_dir():
            return candidate
    known = sorted(p.name for p, _ in iter_packages())
    raise PackageError(f"no model package named {name!r}; installed: {', '.join(known) or 'none'}")


def install_package(source: str | os.PathLike) -> Path:
    """Verify a package folder and copy it into the user models folder."""
    source = Path(source)
    card = verify_package(source)
    target = assets.user_models_dir() / card.name
    with _staged(target) as staging:
        for rel in [CARD_FILE, *card.files]:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, staging / rel)
        verify_package(staging)
    return target
