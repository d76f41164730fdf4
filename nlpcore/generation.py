"""Text generation and scoring with the installed language-model packages.

* :class:`Generator` — the service: ``Generator.load()`` opens every installed
  ``generation`` package (``generate-en``, ``generate-ko``, …);
  ``stream(prompt, model, options, cancel)`` yields :class:`GeneratedPiece`
  records as soon as each run of whole characters is ready, and its return
  value (``StopIteration.value``) says why it ended: ``"eos"``, ``"length"``,
  ``"stop"`` (a stop string) or ``"cancelled"``.
* :func:`encode_exact` — piece ids that decode back to exactly the given text
  (SentencePiece alone drops leading, trailing and repeated spaces).
* :class:`Detokenizer` — incremental, UTF-8-safe decoding of piece ids.
* :func:`cli_generate`, :func:`cli_score` — the ``nlpcore generate`` and
  ``nlpcore score`` subcommands.

Generation runs in NumPy (:class:`nlpcore.inference.NumpyLanguageModel`): the
prompt goes through the model in one batched pass, then each new piece costs
one NumPy step and one sampler call (:mod:`nlpcore.decoding.samplers`).
Keras is imported only to read a package's weights.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from typing import Iterator, Sequence

import numpy as np

from .inference import blas_threads
from .services import CancelFlag, GeneratedPiece, GenerateOptions
from .tokenizer import BOS_ID, EOS_ID, SPECIAL_IDS, UNK_ID, Tokenizer, normalize

__all__ = ["Generator", "Detokenizer", "encode_exact", "cli_generate", "cli_score", "STOP_REASONS"]

STOP_REASONS = ("eos", "length", "stop", "cancelled")

# Spaces SentencePiece would drop: at the start, at the end, and all but one of a run.
_LOST_SPACES = re.compile(r"^ +| {2,}| +$")
_SPACE_BYTE = "<0x20>"


# ====================================================================== encoding
def encode_exact(tokenizer: Tokenizer, text: str) -> list[int]:
    """Piece ids of ``text`` (NFC) that ``tokenizer.decode`` turns back into exactly that text.

    SentencePiece normalises whitespace (leading, trailing and repeated spaces
    vanish). Where the plain encoding does not round-trip, the text is cut at
    those spaces: the clean stretches are encoded normally (each brings one
    space of its own, the ``▁`` of its first piece) and the surplus spaces
    become byte pieces ``<0x20>``. Text that round-trips is encoded as usual.
    """
    text = normalize(text)
    ids = tokenizer.encode(text)
    if tokenizer.decode(ids) == text:
        return ids
    space = tokenizer.piece_to_id(_SPACE_BYTE)
    out: list[int] = []
    position, glued = 0, False
    for match in _LOST_SPACES.finditer(text):
        if match.start() > position:
            out += _encode_stretch(tokenizer, text[position : match.start()], glued)
        run = match.end() - match.start()
        followed = match.end() < len(text)
        # The next stretch's first piece starts with ▁ (a space): leave one space to it,
        # except at the very start, where decoding would drop that ▁.
        glued = followed and match.start() == 0
        out += [space] * (run - 1 if followed and not glued else run)
        position = match.end()
    if position < len(text):
        out += _encode_stretch(tokenizer, text[position:], glued)
    return out


def _encode_stretch(tokenizer: Tokenizer, text: str, glued: bool) -> list[int]:
    """Pieces of ``text``; with ``glued``, without the space SentencePiece puts before it."""
    ids = tokenizer.encode(text)
    if not glued or not ids:
        return ids
    first = tokenizer.id_to_piece(ids[0])
    if first == "\u2581":
        return ids[1:]
    if first.startswith("\u2581"):
        rest = first[1:]
        rest_id = tokenizer.piece_to_id(rest)
        if rest_id != UNK_ID and tokenizer.id_to_piece(rest_id) == rest:
            return [rest_id, *ids[1:]]
        return [tokenizer.piece_to_id(f"<0x{b:02X}>") for b in rest.encode("utf-8")] + ids[1:]
    return ids


def _piece_bytes(tokenizer: Tokenizer) -> list[bytes]:
    """What each id adds to the decoded text, as UTF-8 bytes (specials add nothing)."""
    table = []
    for token_id in range(tokenizer.vocab_size):
        piece = tokenizer.id_to_piece(token_id)
        if token_id in SPECIAL_IDS:
            table.append(b"")
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            table.append(bytes([int(piece[3:5], 16)]))
        else:
            table.append(piece.replace("\u2581", " ").encode("utf-8"))
    return table


def _joins_next(ch: str) -> bool:
    """Whether ``ch`` may fuse with the character after it: a zero-width joiner
    (emoji sequences) or a conjoining Hangul leading consonant or vowel jamo
    (NFC composes them with what follows into one syllable)."""
    code = ord(ch)
    return code == 0x200D or 0x1100 <= code <= 0x11A7 or 0xA960 <= code <= 0xA97F or 0xD7B0 <= code <= 0xD7C6


class Detokenizer:
    """Turns a stream of piece ids into text, whole characters only.

    ``feed(id)`` returns the text that became complete (possibly ``""``): byte
    pieces are buffered until they form a whole UTF-8 character (invalid
    sequences become U+FFFD; :class:`Utf8Guard` keeps generation from writing
    any), and a trailing joiner (ZWJ, a conjoining jamo) waits for the
    character it joins. ``flush()`` returns whatever is left.

    at_start: the ids begin the text, so the ``▁`` of the first piece is not a
        space (SentencePiece's dummy prefix); otherwise they continue a text.
    """

    def __init__(self, tokenizer: Tokenizer, at_start: bool = False, table: list[bytes] | None = None):
        self._tokenizer = tokenizer
        self._table = table if table is not None else _piece_bytes(tokenizer)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._strip_space = at_start
        self._held = ""

    def feed(self, token_id: int) -> str:
        data = self._table[int(token_id)] if 0 <= int(token_id) < len(self._table) else b""
        if self._strip_space and data:
            self._strip_space = False
            if self._tokenizer.id_to_piece(token_id).startswith("\u2581"):  # not a <0x20> byte piece
                data = data[1:]
        text = self._held + self._decoder.decode(data)
        keep = len(text)
        while keep > 0 and _joins_next(text[keep - 1]):
            keep -= 1
        self._held = text[keep:]
        return text[:keep]

    def flush(self, drop_partial: bool = False) -> str:
        """The text still held back; an unfinished UTF-8 sequence at the end becomes
        U+FFFD, or is dropped with ``drop_partial``."""
        if drop_partial:
            self._decoder.reset()
            text = self._held
        else:
            text = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        return text


def _held_for_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could be the start of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


# ====================================================================== one model
class Utf8Guard:
    """Keeps byte pieces to well-formed UTF-8 while sampling.

    After a byte piece that starts a multi-byte character, only continuation
    byte pieces (0x80–0xBF) may follow until the character is whole; at any
    other point, continuation bytes and bytes that never occur in UTF-8
    (0xC0, 0xC1, 0xF5–0xFF) are ruled out. So a model that writes Korean or
    emoji byte by byte cannot produce a broken character (U+FFFD).
    """

    def __init__(self, table: Sequence[bytes], byte_ids: Sequence[bool]):
        size = len(table)
        self.needs = np.zeros(size, dtype=np.int8)  # continuation bytes a piece opens
        self.continuation = np.zeros(size, dtype=bool)
        self.never_first = np.zeros(size, dtype=bool)
        for token_id, (data, is_byte) in enumerate(zip(table, byte_ids)):
            if not is_byte:
                continue
            value = data[0]
            self.continuation[token_id] = 0x80 <= value <= 0xBF
            self.never_first[token_id] = self.continuation[token_id] or value in (0xC0, 0xC1) or value >= 0xF5
            self.needs[token_id] = 1 if 0xC2 <= value <= 0xDF else 2 if 0xE0 <= value <= 0xEF else \
                3 if 0xF0 <= value <= 0xF4 else 0
        self.pending = 0

    def update(self, token_id: int) -> None:
        """Account for the piece just written."""
        if self.pending and self.continuation[token_id]:
            self.pending -= 1
        else:
            self.pending = int(self.needs[token_id])

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """logits [N, V] with the pieces that would break UTF-8 set to -inf."""
        banned = ~self.continuation if self.pending else self.never_first
        return np.where(banned, np.float32(-np.inf), logits).astype(np.float32, copy=False)


class _PromptStep:
    """A step function that reads the whole prompt in one batched pass.

    :meth:`Sampler.sample` feeds the prompt one id per call and uses only the
    logits of the last prompt call; the first call here runs
    :meth:`NumpyLanguageModel.forward` over the whole prompt and the other
    prompt calls return that result again. After the prompt, a call is one
    NumPy step. allowed: bool [V], the pieces the first new piece may be
    (token healing; None = any). guard: a :class:`Utf8Guard` applied to every
    distribution of a new piece (None = none).
    """

    def __init__(self, model, prompt_ids: Sequence[int], allowed: np.ndarray | None = None,
                 guard: Utf8Guard | None = None):
        self.model = model
        self.prompt = np.asarray([list(prompt_ids)], dtype=np.int32)
        self.remaining = len(prompt_ids)
        self.allowed = allowed
        self.guard = guard
        self.result = None

    def __call__(self, ids: np.ndarray, state):
        if self.remaining > 0:
            self.remaining -= 1
            if self.result is None:
                logits, state = self.model.forward(self.prompt, state, last_only=True)
                if self.allowed is not None:
                    logits = np.where(self.allowed, logits, -np.inf).astype(np.float32)
                if self.guard is not None:
                    logits = self.guard.mask(logits)
                self.result = (logits, state, None)
            return self.result
        logits, state, attention = self.model.step(ids, state)
        if self.guard is not None:
            self.guard.update(int(ids[0]))
            logits = self.guard.mask(logits)
        return logits, state, attention


class LanguageModelRunner:
    """A NumPy language model with its tokenizer: scoring and streaming generation.

    model: a :class:`nlpcore.inference.NumpyLanguageModel`. Build one from a
    package with :meth:`from_package`, which also keeps the Keras model as
    ``keras_model`` (the source of truth; the benchmark's naive path calls it).
    """

    def __init__(self, model, tokenizer: Tokenizer, name: str = "", languages: Sequence[str] = (),
                 keras_model=None):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.languages = tuple(languages)
        self.keras_model = keras_model
        self._table = _piece_bytes(tokenizer)
        self._byte_ids = [tokenizer.id_to_piece(i).startswith("<0x") and not tokenizer.is_special(i)
                          for i in range(tokenizer.vocab_size)]

    @classmethod
    def from_package(cls, package) -> "LanguageModelRunner":
        from .inference import NumpyLanguageModel
        from .models import language_model  # noqa: F401  registers TiedEmbedding before loading
        from .train.lm import LMTrainConfig

        config = package.config(LMTrainConfig).model
        keras_model = package.load_model()
        return cls(NumpyLanguageModel(keras_model, config), package.tokenizer(), package.card.name,
                   package.card.languages, keras_model)

    # ---------------------------------------------------------------- scoring
    def score(self, text: str, chunk: int = 256) -> dict[str, float | int]:
        """Negative log-likelihood of ``text`` in nats per character.

        The text is encoded losslessly (:func:`encode_exact`) and read after
        ``<s>`` in one pass that carries the state through the whole text;
        every piece's NLL counts, the first included; ``</s>`` is not scored
        (the text may be a fragment). chars: ``len(text)`` of the text as given.
        Returns ``{"nats_per_char", "chars", "tokens", "nats"}``.
        """
        if not text:
            raise ValueError("cannot score an empty text")
        ids = encode_exact(self.tokenizer, text)
        sequence = np.asarray([BOS_ID, *ids], dtype=np.int32)
        state = None
        nats = 0.0
        for start in range(0, len(ids), chunk):
            inputs = sequence[start : start + chunk]
            targets = sequence[start + 1 : start + 1 + chunk]
            logits, state = self.model.forward(inputs[None, : len(targets)], state)
            logits = logits[0].astype(np.float64)
            top = logits.max(-1, keepdims=True)
            log_z = top[:, 0] + np.log(np.exp(logits - top).sum(-1))
            nats += float((log_z - logits[np.arange(len(targets)), targets]).sum())
        return {"nats_per_char": nats / len(text), "chars": len(text), "tokens": len(ids), "nats": nats}

    # ---------------------------------------------------------------- generation
    def sampler(self, options: GenerateOptions):
        from .decoding import get_sampler

        return get_sampler(options.sampler, temperature=options.temperature, k=options.top_k, p=options.top_p,
                           repetition_penalty=options.repetition_penalty)

    def prepare_prompt(self, prompt: str) -> tuple[list[int], np.ndarray | None, str, bool]:
        """(ids fed to the model, allowed first pieces, text the first piece repeats, at_start).

        Token healing: the prompt's last piece is taken back and the first new
        piece must begin with its text, so a prompt that ends inside what the
        tokenizer would write as one piece (``ROMEO:`` of ``ROMEO:\\n``)
        continues the way the training text does. The repeated text is not
        yielded again. Byte pieces are not healed. A prompt ending in spaces
        is fed without them; the first new piece brings its own space.
        """
        text = normalize(prompt)
        stripped = text.rstrip(" ")
        body = encode_exact(self.tokenizer, stripped) if stripped else []
        ids, allowed, repeat = [BOS_ID, *body], None, ""
        last = body[-1] if body else None
        if last is not None and len(stripped) == len(text) and not self.tokenizer.is_special(last) \
                and not self.tokenizer.id_to_piece(last).startswith("<0x"):
            surface = self._table[last]
            allowed = np.fromiter((data.startswith(surface) for data in self._table), dtype=bool,
                                  count=len(self._table))
            ids = ids[:-1]
            repeat = stripped[len(self.tokenizer.decode(body[:-1])):] if len(body) > 1 else \
                self.tokenizer.decode([last])
        return ids, allowed, repeat, len(ids) == 1

    def prompt_step(self, ids: Sequence[int], allowed: np.ndarray | None = None) -> _PromptStep:
        """The step function of one generation: the prompt in one pass, then one step per
        piece, every new piece kept to well-formed UTF-8."""
        return _PromptStep(self.model, ids, allowed, Utf8Guard(self._table, self._byte_ids))

    def stream(self, prompt: str, options: GenerateOptions = GenerateOptions(),
               cancel: CancelFlag | None = None) -> Iterator[GeneratedPiece]:
        """See :meth:`Generator.stream`."""
        ids, allowed, repeat, at_start = self.prepare_prompt(prompt)
        detokenizer = Detokenizer(self.tokenizer, at_start=at_start, table=self._table)
        # A prompt ending in spaces: its last space is the ▁ of the first new piece.
        skip_space = normalize(prompt).endswith(" ") and not at_start
        stops = tuple(s for s in options.stop if s)
        tokens = self.sampler(options).sample(
            self.prompt_step(ids, allowed), ids, self.model.initial_state(1), options.max_new_tokens,
            eos_id=EOS_ID, rng=options.seed, should_stop=cancel.is_set if cancel is not None else None)
        pending, token_ids, probabilities = "", [], []
        reason = "length"
        while True:
            try:
                with blas_threads(1):
                    token = next(tokens)
            except StopIteration as end:
                reason = end.value or "length"
                break
            token_ids.append(token.id)
            probabilities.append(token.prob)
            new = detokenizer.feed(token.id)
            if repeat and new:
                cut = min(len(repeat), len(new))
                new, repeat = new[cut:], repeat[cut:]
            if skip_space and new:
                skip_space = False
                new = new[1:] if new.startswith(" ") else new
            pending += new
            hit = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
            if hit >= 0:
                tokens.close()
                if pending[:hit]:
                    yield GeneratedPiece(pending[:hit], tuple(token_ids), tuple(probabilities))
                return "stop"
            ready = len(pending) - _held_for_stop(pending, stops)
            if ready > 0:
                yield GeneratedPiece(pending[:ready], tuple(token_ids), tuple(probabilities))
                pending, token_ids, probabilities = pending[ready:], [], []
        pending += detokenizer.flush(drop_partial=True)  # a character cut off by the length limit
        hit = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
        if hit >= 0:
            pending, reason = pending[:hit], "stop"
        if pending:
            yield GeneratedPiece(pending, tuple(token_ids), tuple(probabilities))
        return reason


# ====================================================================== the service
class Generator:
    """Text generation with the installed language models.

    ``model="auto"`` picks by the prompt's script (Hangul → ``generate-ko``,
    otherwise ``generate-en``), falling back to any installed model.
    """

    MODEL_FOR_LANGUAGE = {"ko": "generate-ko", "en": "generate-en"}

    def __init__(self, runners: Sequence[LanguageModelRunner]):
        if not runners:
            raise ValueError("a Generator needs at least one model")
        self._runners = {r.name: r for r in runners}

    @classmethod
    def load(cls, names: Sequence[str] | None = None) -> "Generator":
        """Load the named packages, or every installed ``generation`` package when ``names`` is None.

        Packages that fail to load are skipped; none at all is a PackageError.
        """
        from .packages import PackageError, find_package, iter_packages, load_package

        if names is None:
            names = [card.name for _, card in iter_packages()
                     if not isinstance(card, PackageError) and card.task == "generation"]
        runners, errors = [], []
        for name in names:
            try:
                package = load_package(find_package(name))
                if package.card.task != "generation":
                    raise PackageError(f"{name} is a {package.card.task} model, not a language model")
                runners.append(LanguageModelRunner.from_package(package))
            except PackageError as exc:
                errors.append(str(exc))
        if not runners:
            raise PackageError("no language model could be loaded" + (": " + "; ".join(errors) if errors else
                                                                      " (none is installed)"))
        return cls(runners)

    @property
    def models(self) -> list[str]:
        return list(self._runners)

    def runner(self, model: str = "auto", prompt: str = "") -> LanguageModelRunner:
        if model != "auto":
            if model not in self._runners:
                from .packages import PackageError

                raise PackageError(f"language model {model!r} is not loaded (loaded: {', '.join(self._runners)})")
            return self._runners[model]
        from .text import count_scripts

        preferred = self.MODEL_FOR_LANGUAGE.get(count_scripts(prompt).majority, "generate-en")
        return self._runners.get(preferred) or next(iter(self._runners.values()))

    def stream(self, prompt: str, model: str = "auto", options: GenerateOptions = GenerateOptions(),
               cancel: CancelFlag | None = None) -> Iterator[GeneratedPiece]:
        """Continue ``prompt``, yielding text as soon as whole characters are ready.

        Each :class:`GeneratedPiece` holds the new text (never half a UTF-8
        character), the piece ids consumed since the previous one and the
        probability each was drawn with. Stops after ``options.max_new_tokens``
        pieces, at ``</s>``, before the first stop string (which is not
        yielded), or when ``cancel`` is set (checked before every model step).
        The generator's return value is the reason: one of :data:`STOP_REASONS`.
        """
        return (yield from self.runner(model, prompt).stream(prompt, options, cancel))

    def generate(self, prompt: str, model: str = "auto", options: GenerateOptions = GenerateOptions()) -> str:
        """The whole continuation as one string."""
        return "".join(piece.text for piece in self.stream(prompt, model, options))

    def pieces(self, token_ids: Sequence[int], model: str = "auto") -> list[str]:
        """The SentencePiece piece of each id (for the probability view)."""
        tokenizer = self.runner(model).tokenizer
        return [tokenizer.id_to_piece(i) for i in token_ids]

    def score(self, text: str, model: str = "auto") -> dict[str, float | int]:
        """Nats per character of ``text`` (see :meth:`LanguageModelRunner.score`)."""
        return self.runner(model, text).score(text)


# ====================================================================== CLI
def options_from_args(args) -> GenerateOptions:
    """GenerateOptions from ``nlpcore generate`` flags.

    Without ``--sampler``: temperature 0 → greedy, ``--top-k`` > 0 → top-k,
    ``--top-p`` < 1 → nucleus, otherwise plain temperature sampling.
    A missing ``--repetition-penalty`` takes the service's default (as the app does).
    """
    temperature = float(getattr(args, "temperature", 0.8))
    top_k = int(getattr(args, "top_k", 0) or 0)
    top_p = float(getattr(args, "top_p", 1.0) or 1.0)
    sampler = getattr(args, "sampler", None)
    if not sampler:
        if temperature <= 0:
            sampler = "greedy"
        elif top_k > 0:
            sampler = "top_k"
        elif top_p < 1.0:
            sampler = "top_p"
        else:
            sampler = "temperature"
    penalty = getattr(args, "repetition_penalty", None)
    stop = getattr(args, "stop", None) or ()
    return GenerateOptions(
        max_new_tokens=int(getattr(args, "max_tokens", 200)),
        sampler=sampler,
        temperature=temperature if temperature > 0 else 1.0,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=GenerateOptions.repetition_penalty if penalty is None else float(penalty),
        seed=getattr(args, "seed", None),
        stop=tuple(stop) if not isinstance(stop, str) else (stop,),
    )


def cli_generate(args) -> int:
    """``nlpcore generate``: print the prompt and stream its continuation.

    With ``--json``: one line per piece ``{"text", "token_ids", "probabilities"}``,
    then ``{"done": reason, "model", "prompt", "text", "tokens"}``.
    """
    from .cli import EXIT_OK, EXIT_USAGE, emit, fail
    from .packages import PackageError

    try:
        options = options_from_args(args)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        service = Generator.load([args.model])
    except PackageError as exc:
        return fail(str(exc))
    out = sys.stdout
    prompt = args.prompt or ""
    if not args.json:
        out.write(prompt)
        out.flush()
    name = service.models[0]  # --model may be a package folder
    pieces = service.stream(prompt, name, options)
    texts, count = [], 0
    while True:
        try:
            piece = next(pieces)
        except StopIteration as end:
            reason = end.value
            break
        texts.append(piece.text)
        count += len(piece.token_ids)
        if args.json:
            emit({"text": piece.text, "token_ids": list(piece.token_ids),
                  "probabilities": [round(p, 6) for p in piece.probabilities]}, True)
        else:
            out.write(piece.text)
            out.flush()
    if args.json:
        emit({"done": reason, "model": name, "prompt": prompt, "text": "".join(texts), "tokens": count}, True)
    else:
        out.write("\n")
        out.flush()
    return EXIT_OK


def cli_score(args) -> int:
    """``nlpcore score --model NAME FILE``: print ``{"nats_per_char", "chars", "tokens"}`` as JSON."""
    from .cli import EXIT_OK, fail
    from .packages import PackageError

    try:
        with open(args.file, "rb") as handle:
            raw = handle.read()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        return fail(f"{args.file}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return fail(f"{args.file}: not valid UTF-8 ({exc.reason} at byte {exc.start})")
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as Python reads text
    if not text:
        return fail(f"{args.file}: empty file, nothing to score")
    try:
        service = Generator.load([args.model])
        result = service.score(text, service.models[0])
    except PackageError as exc:
        return fail(str(exc))
    record = {"nats_per_char": round(result["nats_per_char"], 6), "chars": result["chars"], "tokens": result["tokens"]}
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    return EXIT_OK
