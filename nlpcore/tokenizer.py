"""SentencePiece tokenizer wrapper.

One place defines the special ids every model in the project shares:

====  =====  ==========================================
id    piece  meaning
====  =====  ==========================================
0     <pad>  padding (masked out by every model)
1     <unk>  unknown piece (rare: byte fallback covers any text)
2     <s>    beginning of sequence
3     </s>   end of sequence
====  =====  ==========================================

Text is NFC-normalised before encoding, with invisible characters dropped
(:func:`nlpcore.text.strip_invisible`), and SentencePiece itself runs with
the ``identity`` rule, so Korean compatibility jamo (``ㅋㅋ``), emoji and
accented Latin letters survive a round trip unchanged; byte fallback encodes
anything outside the vocabulary as UTF-8 bytes instead of ``<unk>``.
"""

from __future__ import annotations

import io
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union, overload

import sentencepiece as spm

from .text import strip_invisible

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
PAD_PIECE, UNK_PIECE, BOS_PIECE, EOS_PIECE = "<pad>", "<unk>", "<s>", "</s>"

PathOrBytes = Union[str, os.PathLike, bytes]


class TokenizerError(ValueError):
    """A tokenizer could not be trained or loaded."""


def normalize(text: str) -> str:
    """The normalisation every tokenizer applies before encoding: invisible
    characters dropped (a byte-order mark at the start of a file, zero-width
    spaces in text copied from the web; a model would read them as rare byte
    pieces and translate or score a different sentence), then Unicode NFC."""
    return unicodedata.normalize("NFC", strip_invisible(text))


@dataclass(frozen=True)
class TokenizerConfig:
    """How a SentencePiece model is trained.

    vocab_size: number of pieces, the four specials and 256 byte pieces included.
    model_type: ``"unigram"`` or ``"bpe"``.
    character_coverage: share of characters covered by single pieces; 0.9995
        suits Korean and Chinese-like scripts, 1.0 suits small alphabets.
    max_sentences: at most this many training sentences are sampled.
    user_symbols: extra pieces that are never split (e.g. language tags).
    seed: sampling seed, so training is repeatable.
    hard_vocab_limit: when false, a corpus too small for ``vocab_size`` gives a
        smaller vocabulary instead of an error.
    """

    vocab_size: int = 16000
    model_type: str = "unigram"
    character_coverage: float = 0.9995
    max_sentences: int = 2_000_000
    user_symbols: tuple[str, ...] = ()
    seed: int = 1234
    hard_vocab_limit: bool = True


class Tokenizer:
    """A SentencePiece model with the project's special ids.

    Build one with :meth:`train` or :meth:`load`; ``to_bytes`` gives the
    serialized model that is stored inside model packages.
    """

    def __init__(self, model_proto: bytes):
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as exc:
            raise TokenizerError(f"not a SentencePiece model: {exc}") from exc
        specials = [processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()]
        if specials != list(SPECIAL_IDS):
            raise TokenizerError(
                f"SentencePiece model has special ids {specials} (pad, unk, bos, eos); "
                f"the project needs {list(SPECIAL_IDS)}"
            )
        self._proto = bytes(model_proto)
        self._sp = processor

    # ---------------------------------------------------------------- building
    @classmethod
    def load(cls, source: PathOrBytes) -> "Tokenizer":
        """Load from a ``.model`` file path or from the serialized bytes."""
        if isinstance(source, (bytes, bytearray)):
            return cls(bytes(source))
        path = Path(source)
        if not path.is_file():
            raise TokenizerError(f"tokenizer file not found: {path}")
        return cls(path.read_bytes())

    @classmethod
    def train(cls, texts: Iterable[str], config: TokenizerConfig = TokenizerConfig()) -> "Tokenizer":
        """Train a new model on an iterable of texts (one sentence or document each)."""
        if config.model_type not in ("unigram", "bpe"):
            raise TokenizerError(f"model_type must be 'unigram' or 'bpe', not {config.model_type!r}")
        sentences = (normalize(t) for t in texts if t and not t.isspace())
        buffer = io.BytesIO()
        spm.set_random_generator_seed(config.seed)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=buffer,
                vocab_size=config.vocab_size,
                model_type=config.model_type,
                character_coverage=config.character_coverage,
                input_sentence_size=config.max_sentences,
                shuffle_input_sentence=True,
                seed_sentencepiece_size=1_000_000,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                pad_piece=PAD_PIECE,
                unk_piece=UNK_PIECE,
                bos_piece=BOS_PIECE,
                eos_piece=EOS_PIECE,
                user_defined_symbols=list(config.user_symbols),
                byte_fallback=True,
                hard_vocab_limit=config.hard_vocab_limit,
                split_digits=True,
                normalization_rule_name="identity",
                max_sentence_length=16384,
                num_threads=os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as exc:
            raise TokenizerError(f"SentencePiece training failed: {exc}") from exc
        return cls(buffer.getvalue())

    def to_bytes(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._proto

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_bytes(self._proto)
        return path

    # ---------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def __len__(self) -> int:
        return self.vocab_size

    def id_to_piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(int(token_id))

    def piece_to_id(self, piece: str) -> int:
        return self._sp.piece_to_id(piece)

    def is_special(self, token_id: int) -> bool:
        return int(token_id) in SPECIAL_IDS

    # ---------------------------------------------------------------- encoding
    @overload
    def encode(self, text: str, *, add_bos: bool = ..., add_eos: bool = ...) -> list[int]: ...
    @overload
    def encode(self, text: Sequence[str], *, add_bos: bool = ..., add_eos: bool = ...) -> list[list[int]]: ...

    def encode(self, text, *, add_bos=False, add_eos=False):
        """Text (or a list of texts) to piece ids."""
        if isinstance(text, str):
            return self._sp.encode(normalize(text), add_bos=add_bos, add_eos=add_eos)
        return self._sp.encode([normalize(t) for t in text], add_bos=add_bos, add_eos=add_eos)

    def sample(self, texts: Sequence[str], alpha: float, seed: int) -> list[list[int]]:
        """Texts to piece ids, each segmentation drawn at random instead of the
        best one (subword regularization, Kudo 2018): from the unigram lattice
        with smoothing ``alpha`` (the smaller, the nearer a uniform draw over
        all segmentations: more, shorter pieces), or for a BPE model by
        dropping each merge with probability ``alpha``.
        Each segmentation still decodes to the same text; ``seed`` makes the
        draw repeatable."""
        if not 0.0 < alpha <= 1.0:
            raise TokenizerError(f"sampling alpha must be in (0, 1], not {alpha}")
        spm.set_random_generator_seed(seed)
        return self._sp.encode([normalize(t) for t in texts], enable_sampling=True, alpha=alpha, nbest_size=-1)

    def encode_pieces(self, text: str) -> list[str]:
        """Text to piece strings (``▁`` marks a preceding space)."""
        return self._sp.encode(normalize(text), out_type=str)

    def decode(self, ids: Iterable[int]) -> str:
        """Piece ids back to text; pad, bos and eos ids are dropped."""
        kept = [int(i) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)]
        return self._sp.decode(kept)

    def decode_pieces(self, pieces: Iterable[str]) -> str:
        return self._sp.decode_pieces(list(pieces))

    def piece_words(self, ids: Sequence[int]) -> list[int]:
        """For each id, the index of the whitespace-separated word it belongs to.

        A piece starting with ``▁`` opens a new word; byte pieces and other
        continuation pieces extend the current one. Used to merge per-piece
        scores (contributions, attention) back into words.
        """
        words: list[int] = []
        current = -1
        for token_id in ids:
            piece = self.id_to_piece(token_id)
            if current < 0 or piece.startswith("\u2581"):
                current += 1
            words.append(current)
        return words
