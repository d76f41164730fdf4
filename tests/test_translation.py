"""Translation training on a fixture corpus, the Translator service and the CLI contract.

The fixture is 300 made-up English→French number-word pairs ("three one four"
→ "trois un quatre"): a model learns it in seconds, its attention must walk
along the source, and its package goes through the same code as the real ones.
"""

import gzip
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from nlpcore.services import TranslateOptions

EN = "zero one two three four five six seven eight nine".split()
FR = "zéro un deux trois quatre cinq six sept huit neuf".split()


def number_pairs(count=300, seed=0):
    rng = random.Random(seed)
    pairs = set()
    while len(pairs) < count:
        digits = [rng.randrange(10) for _ in range(rng.randint(2, 6))]
        pairs.add((" ".join(EN[d] for d in digits), " ".join(FR[d] for d in digits)))
    return sorted(pairs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(package, training config) of a tiny en→fr model trained on the fixture, both attention types compared."""
    from nlpcore.models.seq2seq import Seq2SeqConfig
    from nlpcore.tokenizer import TokenizerConfig
    from nlpcore.train.translation import TranslationTrainConfig, train

    root = tmp_path_factory.mktemp("translation")
    corpus = root / "numbers.tsv.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as handle:
        handle.write("en\tfr\n" + "".join(f"{en}\t{fr}\n" for en, fr in number_pairs()))
    tokenizer = TokenizerConfig(vocab_size=300, character_coverage=1.0, hard_vocab_limit=False)
    config = TranslationTrainConfig(
        name="translate-en-fr", source="en", target="fr", corpus=str(corpus), validation_fraction=0.15,
        source_tokenizer=tokenizer, target_tokenizer=tokenizer,
        model=Seq2SeqConfig(embedding_dim=32, encoder_units=32, encoder_layers=1, decoder_units=64,
                            decoder_layers=1, attention_units=32, attention_activation="relu", dropout=0.0),
        batch_size=16, max_tokens=0, epochs=12, learning_rate=1e-2, patience=12, beam_size=3,
        compare_attention=True, run_dir=str(root / "run"), output=str(root / "translate-en-fr"),
        sentence_input=False,  # lower-case number words without full stops
    )
    package = train(config, verbose=0)
    return package, config


@pytest.fixture
def installed(trained, tmp_path, monkeypatch, _user_home):
    """The fixture package installed in this test's empty user folder, with no shipped models."""
    from nlpcore.packages import install_package

    monkeypatch.setenv("MALBEOT_ASSETS", str(tmp_path / "no-assets"))
    install_package(trained[0].path)
    return _user_home


@pytest.fixture
def translator(installed):
    from nlpcore.translation import Translator

    return Translator.load()


# ------------------------------------------------------------ training and package
def test_training_learns_and_writes_a_complete_package(trained):
    package, config = trained
    card = package.card
    assert card.task == "translation" and card.languages == ("en", "fr")
    assert {"config.yaml", "model.keras", "source.model", "target.model", "evaluation.json"} <= set(card.files)
    ((split, metrics),) = card.metrics.items()
    assert split.startswith("validation") and "beam 3" in split
    assert metrics["token_accuracy"] > 0.9  # chance is about 1 in 11
    assert metrics["bleu"] > 60 and metrics["chrf"] > 75
    comparison = dict(card.extra["attention_comparison"])
    assert comparison.pop("budget") == {"pairs": card.extra["training_pairs"], "epochs": config.epochs,
                                        "note": "same data, settings and validation split for each attention type"}
    assert set(comparison) == {"luong", "bahdanau"}
    assert card.extra["attention"] == max(comparison, key=lambda a: comparison[a]["bleu"])
    assert "SentencePiece" in card.extra["tokenizers"]
    assert sum(d.rows for d in card.data) == card.extra["training_pairs"]
    evaluation = json.loads(package.file("evaluation.json").read_text())
    assert evaluation["runs"][card.extra["attention"]]["evaluation"]["samples"]


def test_package_stores_float16_weights_and_its_scores_are_theirs(trained):
    from tests.helpers import stored_weight_dtypes

    package, config = trained
    assert config.weights_dtype == "float16" and package.card.extra["weights_dtype"] == "float16"
    assert stored_weight_dtypes(package.path / "model.keras") == {np.dtype("float16")}


def test_unknown_weights_dtype_is_refused_before_training():
    from nlpcore.train.translation import TranslationTrainConfig

    with pytest.raises(ValueError, match="weights_dtype"):
        TranslationTrainConfig(weights_dtype="int8")
    with pytest.raises(ValueError, match="mantissa_bits"):
        TranslationTrainConfig(mantissa_bits=11)
    with pytest.raises(ValueError, match="subword_sampling"):
        TranslationTrainConfig(subword_sampling=1.5)
    with pytest.raises(ValueError, match="subword_sampling_sides"):
        TranslationTrainConfig(subword_sampling_sides=("source", "decoder"))


def test_attention_walks_along_the_source(trained):
    """Word i of the output is word i of the input: the attention peak must move with it
    (a stuck or uniform attention is the known failure mode of a weak seq2seq)."""
    from nlpcore.translation import TranslationModel

    model = TranslationModel.from_package(trained[0])
    sentences = [" ".join(random.Random(n).choice(EN) for _ in range(5)) for n in range(20)]
    aligned = total = 0
    for (result,) in model.translate_sentences(sentences, TranslateOptions(beam_size=3)):
        best = result.hypotheses[0]
        peaks = best.attention.argmax(1)
        assert best.attention.shape == (len(best.pieces), len(result.source_pieces))
        assert len(set(peaks.tolist())) >= 4  # it moves across source positions
        steps = min(len(peaks), len(result.source_pieces))
        aligned += int((peaks[:steps] == np.arange(steps)).sum())
        total += steps
    assert aligned / total > 0.8


def test_license_of_used_rows():
    from nlpcore.train.translation import resulting_license

    assert resulting_license({("tatoeba", "CC-BY-2.0-FR"): 5}) == "CC-BY-2.0-FR"
    assert resulting_license({("tatoeba", "CC-BY-2.0-FR"): 5, ("jhe", "CC-BY-SA-3.0"): 2}).startswith("CC-BY-SA-3.0")
    assert "non-commercial" in resulting_license({("kss-kosp2e", "CC-BY-NC-SA-4.0"): 1, ("news", "CC-BY-SA-3.0"): 1})


def test_scores_by_origin_of_a_mixed_corpus():
    from nlpcore.data import Pair
    from nlpcore.train.translation import scores_by_origin

    pairs = [Pair(f"문장 {i}", f"the cat sat on mat number {i}", o, "CC-BY-SA-3.0")
             for i, o in enumerate(["news", "jhe"] * 4)]
    hypotheses = [p.target if p.origin == "jhe" else "a dog" for p in pairs]
    scores = scores_by_origin(pairs, hypotheses, "ko-en")
    assert set(scores) == {"jhe", "news"} and scores["jhe"]["sentences"] == scores["news"]["sentences"] == 4
    assert scores["jhe"]["bleu"] == 100.0 and scores["news"]["bleu"] < 5
    assert scores_by_origin([Pair("one", "un")], ["un"], "en-fr") == {}  # one source: nothing to split


def test_normalize_text_repairs_news_rows(tmp_path):
    import dataclasses

    from nlpcore.train.translation import TranslationTrainConfig, load_pairs, normalize_text

    assert normalize_text("PHNOM PENH, Cambodia (CNN) &#8212; Cambodia has sent") == "Cambodia has sent"
    assert normalize_text("(CNN) &#8212; Barack Obama¡¯s campaign") == "Barack Obama’s campaign"
    assert normalize_text("TOKYO, Japan (CNN) -- Two hundred") == "Two hundred"
    assert normalize_text("Se&ntilde;or said ¡°yes¡±") == "Señor said “yes”"
    for kept in ("I saw it on CNN.", "He quoted (CNN) as a source.", "Tom & Mary", "정말 재미있다"):
        assert normalize_text(kept) == kept

    corpus = tmp_path / "ko-en.tsv"
    corpus.write_text("ko\ten\n오바마 캠페인\t(CNN) &#8212; Obama¡¯s campaign\n빈 줄\t(CNN)\n", encoding="utf-8")
    config = TranslationTrainConfig(source="ko", target="en", corpus=str(corpus), validation_fraction=0.0)
    assert [p.target for p in load_pairs(config)[0]] == ["(CNN) &#8212; Obama¡¯s campaign", "(CNN)"]
    cleaned = load_pairs(dataclasses.replace(config, normalize_text=True))[0]
    assert [(p.source, p.target) for p in cleaned] == [("오바마 캠페인", "Obama’s campaign")]  # nothing left: dropped


def test_excluded_licenses_drop_rows(tmp_path):
    from nlpcore.train.translation import TranslationTrainConfig, load_pairs

    corpus = tmp_path / "ko-en.tsv"
    corpus.write_text("ko\ten\tsource\tlicense\n"
                      + "".join(f"문장 {i}\tsentence {i}\t{o}\t{l}\n" for i, (o, l) in enumerate(
                          [("tatoeba", "CC-BY-2.0-FR"), ("kss-kosp2e", "CC-BY-NC-SA-4.0"), ("news", "CC-BY-SA-3.0")] * 20)),
                      encoding="utf-8")
    config = TranslationTrainConfig(source="ko", target="en", corpus=str(corpus), validation_fraction=0.0,
                                    exclude_licenses=("CC-BY-NC-SA-4.0",))
    train, validation, used = load_pairs(config)
    assert len(train) == 40 and not validation
    assert used == {("tatoeba", "CC-BY-2.0-FR"): 20, ("news", "CC-BY-SA-3.0"): 20}


def test_comparison_on_a_smaller_budget_then_the_winner_in_full(trained, tmp_path):
    import dataclasses

    from nlpcore.train.translation import train

    package, config = trained
    config = dataclasses.replace(config, compare_pairs=120, compare_epochs=3, epochs=4,
                                 run_dir=str(tmp_path / "run"))
    package = train(config, output=str(tmp_path / "package"), verbose=0)
    comparison = package.card.extra["attention_comparison"]
    assert comparison["budget"]["pairs"] == 120 and comparison["budget"]["epochs"] == 3
    assert "winner" in comparison["budget"]["note"]
    chosen = package.card.extra["attention"]
    assert chosen == max(("luong", "bahdanau"), key=lambda a: (comparison[a]["bleu"], a == "luong"))
    assert package.card.extra["epochs_run"] == 4
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir()) == [
        "compare-bahdanau", "compare-luong", chosen]


def test_resume_reuses_a_finished_run(trained, tmp_path):
    """With --resume, finished models are not trained again."""
    import dataclasses

    from nlpcore.train.translation import train

    package, config = trained
    again = train(dataclasses.replace(config, compare_attention=False), resume=True,
                  output=str(tmp_path / "again"), verbose=0)
    first = package.card.extra["attention_comparison"][config.model.attention]
    assert again.card.extra["attention_comparison"][config.model.attention]["epochs"] == first["epochs"]


def test_time_budget_stops_training_at_a_batch_boundary(trained, tmp_path):
    import dataclasses

    from nlpcore.train.translation import train

    package, config = trained
    quick = dataclasses.replace(config, compare_attention=False, time_budget_minutes=0.001, epochs=12,
                                run_dir=str(tmp_path / "run"))
    package = train(quick, output=str(tmp_path / "package"), verbose=0)
    assert package.card.extra["epochs_run"] == 1  # stopped inside the first epoch, which was still validated
    history = (tmp_path / "run" / config.model.attention / "history.csv").read_text().splitlines()
    assert len(history) == 2 and "val_loss" in history[0]


def test_transfer_keeps_the_shared_side_and_starts_the_new_language_fresh(trained, tmp_path):
    """init_from: a de→fr run on the en→fr package keeps its French tokenizer and every
    weight but the source embedding (checked with a learning rate too small to move them)."""
    import dataclasses

    from nlpcore.train.translation import train

    package, config = trained
    tuned = train(_german_config(trained, tmp_path, init_from=str(package.path), learning_rate=1e-9,
                                 model=dataclasses.replace(config.model, encoder_layers=2, dropout=0.2)),
                  output=str(tmp_path / "translate-de-fr"), verbose=0)  # the package's architecture wins

    origin, model = package.load_model(), tuned.load_model()
    assert tuned.tokenizer("target").to_bytes() == package.tokenizer("target").to_bytes()
    assert tuned.tokenizer("source").encode_pieces("null sieben") == ["▁null", "▁sieben"]  # its own, German
    assert tuned.config(type(config)).model.encoder_layers == config.model.encoder_layers == 1
    assert tuned.config(type(config)).model.dropout == 0.2
    for layer in model.layers:
        if not layer.weights:
            continue
        same = [np.allclose(a, b, atol=1e-3) if a.shape == b.shape else False
                for a, b in zip(layer.get_weights(), origin.get_layer(layer.name).get_weights())]
        assert all(same) == (layer.name != "source_embedding"), layer.name
    entry = tuned.card.extra["initialized_from"]
    assert entry["package"] == "translate-en-fr" and entry["shared"] == ["target"]
    assert entry["fresh_layers"] == ["source_embedding"]
    assert "init_from" in tuned.card.extra["attention_comparison"]["budget"]["note"]
    subsets = entry["validation_subsets"]  # the French of most validation pairs was in the package's training
    assert set(subsets) <= {"seen by translate-en-fr", "unseen"} and subsets["seen by translate-en-fr"]["sentences"]
    evaluation = json.loads(tuned.file("evaluation.json").read_text())["runs"][tuned.card.extra["attention"]]
    assert sum(s["sentences"] for s in subsets.values()) == evaluation["evaluation"]["sentences"]
    assert any(d.notes.startswith("through translate-en-fr") for d in tuned.card.data)
    assert "translate-en-fr's" in tuned.card.extra["tokenizers"]


def _german_config(trained, folder, **changes):
    """The fixture's config for German→French (the same numbers in German words) in ``folder``."""
    import dataclasses

    package, config = trained
    german = "null eins zwei drei vier fünf sechs sieben acht neun".split()
    corpus = folder / "de-fr.tsv"
    corpus.write_text("de\tfr\n" + "".join(f"{' '.join(german[EN.index(w)] for w in en.split())}\t{fr}\n"
                                           for en, fr in number_pairs()), encoding="utf-8")
    return dataclasses.replace(config, name="translate-de-fr", source="de", corpus=str(corpus),
                               compare_attention=False, epochs=1, min_learning_rate=0.0,
                               **{"run_dir": str(folder / "run"), **changes})


def test_continuation_scores_again_the_subsets_of_the_package_it_started_from(installed, trained, tmp_path):
    """A de→fr package continued on its own corpus: its direct init_from saw every
    training pair, so the run scores the subsets its card measured against the
    installed translate-en-fr (where the weights started) again, in the new card."""
    from nlpcore.train.translation import train

    first = train(_german_config(trained, tmp_path, init_from="translate-en-fr", learning_rate=1e-4),
                  output=str(tmp_path / "first"), verbose=0)
    before = first.card.extra["initialized_from"]["validation_subsets"]
    assert set(before) == {"seen by translate-en-fr", "unseen"}

    second = train(_german_config(trained, tmp_path, init_from=str(first.path), learning_rate=1e-4,
                                  run_dir=str(tmp_path / "run2")), output=str(tmp_path / "second"), verbose=0)
    extra = second.card.extra
    assert extra["initialized_from"]["package"] == "translate-de-fr"
    assert "validation_subsets" not in extra["initialized_from"]  # its own split: nothing it did not see
    assert {k: v["sentences"] for k, v in extra["validation_subsets"].items()} == \
        {k: v["sentences"] for k, v in before.items()}
    # translate-en-fr shares the French target with de→fr, though the continuation shares both sides
    assert "whose target sentence (fr) translate-en-fr was trained on" in extra["validation_subsets_note"]

    third = train(_german_config(trained, tmp_path, init_from=str(second.path), learning_rate=1e-4,
                                 run_dir=str(tmp_path / "run3")), output=str(tmp_path / "third"), verbose=0)
    assert third.card.extra["validation_subsets"].keys() == before.keys()  # and so on down a recipe


def test_split_language_holds_out_the_same_pairs_in_both_directions(tmp_path):
    """Each direction hashes its own source sentence unless both name one
    split_language; channel_seen counts the validation pairs the reverse
    direction trained on, whether or not either config normalises its text."""
    import dataclasses

    from nlpcore.train.translation import TranslationTrainConfig, channel_seen, load_pairs, normalize_text

    corpus = tmp_path / "ko-en.tsv"
    corpus.write_text("ko\ten\n" + "".join(f"문장 {i}\tsentence number {i} ¡¯\n" for i in range(200)), encoding="utf-8")
    ko_en = TranslationTrainConfig(source="ko", target="en", corpus=str(corpus), validation_fraction=0.2,
                                   normalize_text=True)
    en_ko = TranslationTrainConfig(source="en", target="ko", corpus=str(corpus), validation_fraction=0.2)

    def held_out(config):  # the validation pairs, whichever side is the source
        return {tuple(sorted((normalize_text(p.source), normalize_text(p.target)))) for p in load_pairs(config)[1]}

    seen, total = channel_seen(ko_en, en_ko)
    assert total == len(load_pairs(ko_en)[1]) > 20 and seen > total // 2  # the splits hardly overlap
    shared = [dataclasses.replace(c, split_language="ko") for c in (ko_en, en_ko)]
    assert held_out(shared[0]) == held_out(shared[1])
    assert channel_seen(*shared) == (0, total)  # the Korean sentence decides for both
    assert held_out(dataclasses.replace(en_ko, split_language="en")) == held_out(en_ko)  # the source's, as by default
    everything = dataclasses.replace(ko_en, validation_fraction=1.0)  # normalised text, the other one raw
    assert channel_seen(everything, dataclasses.replace(en_ko, validation_fraction=0.0)) == (200, 200)
    with pytest.raises(ValueError, match="split_language"):
        TranslationTrainConfig(source="ko", target="en", split_language="fr")
    with pytest.raises(ValueError, match="ko→en"):
        channel_seen(ko_en, ko_en)


def _reverse_config(trained, folder, **changes):
    """The fixture's config for French→English, on the fixture's own corpus, in ``folder``."""
    import dataclasses

    _, config = trained
    return dataclasses.replace(config, name="translate-fr-en", source="fr", target="en", compare_attention=False,
                               epochs=1, run_dir=str(folder / "run"), output=str(folder / "translate-fr-en"),
                               **changes)


def test_a_channel_trained_on_the_validation_pairs_is_refused_and_reported(installed, trained, tmp_path,
                                                                           capsys):
    """translate-en-fr hashes the English sentence; a fr→en run that hashes the French one
    would rerank its validation pairs with a model trained on most of them."""
    from nlpcore.cli import main
    from nlpcore.packages import install_package
    from nlpcore.train.translation import check_channel, train

    leaky = _reverse_config(trained, tmp_path, channel_model="translate-en-fr", channel_weight=1.0)
    with pytest.raises(ValueError, match="translate-en-fr was trained on .* validation pairs"):
        train(leaky, verbose=0)  # before any training
    check_channel(_reverse_config(trained, tmp_path, channel_model="translate-en-fr", channel_weight=1.0,
                                  split_language="en"))  # one split for both: nothing seen
    check_channel(_reverse_config(trained, tmp_path, channel_model="not-installed", channel_weight=1.0))

    # off by default, so it trains; asked for at evaluation, the record says how many pairs the channel saw
    install_package(train(_reverse_config(trained, tmp_path, channel_model="translate-en-fr"), verbose=0).path)
    capsys.readouterr()
    assert main(["eval", "--model", "translate-fr-en", "--json"]) == 0
    plain = capsys.readouterr()
    assert "channel_seen_pairs" not in json.loads(plain.out) and "warning" not in plain.err
    assert main(["eval", "--model", "translate-fr-en", "--channel-weight", "1", "--json"]) == 0
    reranked = capsys.readouterr()
    record = json.loads(reranked.out)
    assert record["channel_weight"] == 1.0 and 0 < record["channel_seen_pairs"] <= record["sentences"]
    assert f"trained on {record['channel_seen_pairs']:,} of these {record['sentences']:,} pairs" in reranked.err


def test_extra_corpora_train_and_are_named_in_the_card(trained, tmp_path):
    """Continued training of the package on both its languages (nothing fresh) with a
    back-translated table: its rows are counted per origin and its record goes into the card."""
    import dataclasses

    from nlpcore.train.translation import train

    package, config = trained
    table = tmp_path / "numbers-bt.tsv"
    extra = number_pairs(340, seed=1)[-40:]
    table.write_text("en\tfr\tsource\tlicense\n" + "".join(f"{en}\t{fr}\tnumbers-bt\tMIT\n" for en, fr in extra),
                     encoding="utf-8")
    record = {"model": "translate-fr-en", "version": "9.9.9", "beam_size": 5, "corpus": "numbers",
              "description": "made-up French number words", "license": "MIT", "sentences": 40, "pairs": 40}
    table.with_suffix(".json").write_text(json.dumps(record), encoding="utf-8")
    tuned = train(dataclasses.replace(
        config, compare_attention=False, epochs=1, learning_rate=1e-4, init_from=str(package.path),
        extra_corpora=(str(table),), run_dir=str(tmp_path / "run")), output=str(tmp_path / "tuned"), verbose=0)

    assert tuned.card.extra["initialized_from"]["fresh_layers"] == []  # both languages shared
    bt = {d.name: d for d in tuned.card.data}["numbers-bt"]
    assert 0 < bt.rows <= 40 and bt.license == "MIT"
    assert "translate-fr-en 9.9.9 (beam 5)" in bt.notes and "made-up French number words" in bt.notes
    (entry,) = tuned.card.extra["extra_corpora"]
    assert entry["path"] == str(table) and entry["model"] == "translate-fr-en" and "tagged" not in entry
    assert tuned.card.extra["training_pairs"] > package.card.extra["training_pairs"]
    # the package's own rows, trained on again, are listed once; its split is this one, so no "seen" subset
    assert len({(d.name, d.license, d.rows) for d in tuned.card.data}) == len(tuned.card.data)
    assert {d.name for d in package.card.data} <= {d.name for d in tuned.card.data}
    assert "validation_subsets" not in tuned.card.extra["initialized_from"]
    table.with_suffix(".json").unlink()  # a table without its record is refused before any training
    with pytest.raises(ValueError, match="numbers-bt.json"):
        train(dataclasses.replace(config, extra_corpora=(str(table),), run_dir=str(tmp_path / "run2")), verbose=0)


def test_subword_sampling_segments_the_training_side_anew_each_epoch(trained, tmp_path, monkeypatch):
    """Continued training with subword regularization on the target side: every
    epoch, the French of every training pair is drawn again, the English keeps
    its best segmentation, and the card names the setting."""
    import dataclasses

    from nlpcore.tokenizer import Tokenizer
    from nlpcore.train.translation import train

    package, config = trained
    drawn, sample = [], Tokenizer.sample

    def counted(self, texts, alpha, seed):
        drawn.append((texts[0], alpha, seed, len(texts)))
        return sample(self, texts, alpha, seed)

    monkeypatch.setattr(Tokenizer, "sample", counted)
    tuned = train(dataclasses.replace(
        config, compare_attention=False, epochs=3, patience=3, learning_rate=1e-4, init_from=str(package.path),
        subword_sampling=0.3, subword_sampling_sides=("target",), run_dir=str(tmp_path / "run")),
        output=str(tmp_path / "tuned"), verbose=0)

    pairs = tuned.card.extra["training_pairs"]
    seeds = [seed for _, _, seed, _ in drawn]  # a draw for every epoch, seeded by the epoch number
    assert len(seeds) >= 3 and seeds == list(range(42_000, 42_000 + len(seeds)))
    assert {(alpha, n) for _, alpha, _, n in drawn} == {(0.3, pairs)}
    assert all(set(text.split()) <= set(FR) for text, *_ in drawn)  # the target side only
    assert tuned.card.extra["subword_sampling"] == {"alpha": 0.3, "sides": ["target"]}
    assert tuned.card.metrics[next(iter(tuned.card.metrics))]["bleu"] > 50  # still translates the fixture
    assert "subword_sampling" not in package.card.extra


def test_card_data_lists_each_source_once():
    from nlpcore.packages import DataSource
    from nlpcore.train.translation import listed_once

    by_2_0 = "Tatoeba English; the ko side machine-translated by translate-en-ko 2.0.0"
    own = (DataSource("ko-en:jhe", 1255, "CC-BY-SA-3.0", "JHE"),
           DataSource("en-fr-bt", 59497, "CC-BY-2.0-FR", by_2_0.replace("2.0.0", "2.1.0")))
    inherited = (DataSource("ko-en:jhe", 1255, "CC-BY-SA-3.0", "through translate-ko-en (init_from): JHE"),
                 DataSource("en-fr-bt", 29755, "CC-BY-2.0-FR", f"through translate-ko-en (init_from): {by_2_0}"),
                 DataSource("en-fr-bt", 96800, "CC-BY-2.0-FR", f"through translate-ko-en (init_from): {by_2_0}"),
                 DataSource("ko-en:jhe", 1255, "MIT", "JHE"))
    # the same rows once; the same model's back-translation of one draw once, with its most rows;
    # another model's back-translation of those sentences and another license apart
    assert listed_once(own + inherited) == (own[0], own[1], inherited[2], inherited[3])


def test_card_data_of_a_chain_of_init_from_names_the_first_package(trained):
    """Data a package inherited through init_from keeps its one note in the next card, not a growing chain."""
    import dataclasses

    from nlpcore.packages import DataSource, Package
    from nlpcore.train.translation import Transfer, TranslationTrainConfig

    package, _ = trained
    card = dataclasses.replace(package.card, data=(
        DataSource("ko-en:jhe", 1255, "CC-BY-SA-3.0", "JHE"),
        DataSource("en-fr:tatoeba", 133336, "CC-BY-2.0-FR", "through translate-fr-en (init_from): Tatoeba")))
    transfer = Transfer(Package(package.path, card), package.config(TranslationTrainConfig),
                        ("target",), ())
    assert [d.notes for d in transfer.card_data()] == [
        "through translate-en-fr (init_from): JHE", "through translate-fr-en (init_from): Tatoeba"]


def test_transfer_needs_a_shared_language_and_keeps_the_attention(trained, tmp_path):
    import dataclasses

    from nlpcore.train.translation import TranslationTrainConfig, train

    package, config = trained
    with pytest.raises(ValueError, match="shares neither"):
        train(dataclasses.replace(config, source="ko", target="en", compare_attention=False,
                                  init_from=str(package.path), run_dir=str(tmp_path / "run")), verbose=0)
    with pytest.raises(ValueError, match="compare_attention"):
        TranslationTrainConfig(compare_attention=True, init_from="translate-fr-en")


def test_time_budget_anneals_the_learning_rate_to_its_floor():
    import keras
    import numpy as np

    from nlpcore.train.common import TimeBudget

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    budget = TimeBudget(minutes=1.0 / 60, learning_rate=0.1, min_learning_rate=0.001)
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: rates.append(float(model.optimizer.learning_rate.numpy())))
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    history = model.fit(x, x[:, :1], batch_size=8, epochs=10_000, verbose=0, callbacks=[budget, record])
    assert budget.stopped_early and len(history.history["loss"]) < 10_000
    assert rates[0] == pytest.approx(0.1, rel=0.05)
    assert rates[-1] < 0.01 and all(a >= b for a, b in zip(rates, rates[1:]))


def test_epoch_snapshots_keep_the_best_epochs_and_average_them(tmp_path):
    import keras

    from nlpcore.train.common import EpochSnapshots, averaged_weights

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x @ rng.normal(size=(4, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.3), "mse")  # a rate that makes the validation loss jump around
    snapshots = EpochSnapshots(tmp_path / "snapshots", keep=2)
    history = model.fit(x[:48], y[:48], validation_data=(x[48:], y[48:]), epochs=6, verbose=0,
                        callbacks=[snapshots]).history
    best_two = sorted(range(6), key=lambda e: history["val_loss"][e])[:2]
    kept = snapshots.kept()
    assert list(kept) == [snapshots.file_name(e + 1) for e in best_two] == ["epoch-%03d.weights.h5" % (e + 1)
                                                                             for e in best_two]
    assert list(kept.values()) == pytest.approx([history["val_loss"][e] for e in best_two])
    assert sorted(p.name for p in snapshots.folder.glob("*.h5")) == sorted(kept)

    own = model.get_weights()
    files = [snapshots.folder / name for name in kept]
    each = []
    for path in files:
        model.load_weights(path)
        each.append(model.get_weights())
    model.set_weights(own)
    average = averaged_weights(model, files)
    for i, weight in enumerate(average):
        np.testing.assert_allclose(weight, (each[0][i] + each[1][i]) / 2, rtol=1e-6)
    assert not np.allclose(each[0][0], each[1][0])  # two different epochs
    for a, b in zip(model.get_weights(), own):  # the model's weights are put back
        np.testing.assert_array_equal(a, b)


def test_checkpoint_average_is_validated_and_ships_only_when_better(trained, tmp_path):
    import dataclasses

    from nlpcore.train.common import EpochSnapshots, averaged_weights
    from nlpcore.train.translation import train

    package, config = trained
    run = tmp_path / "run"
    averaged = train(dataclasses.replace(config, compare_attention=False, epochs=4, average_checkpoints=3,
                                         run_dir=str(run)), output=str(tmp_path / "package"), verbose=0)
    record = averaged.card.extra["checkpoint_average"]
    history = json.loads((run / config.model.attention / "summary.json").read_text())["history"]
    assert len(record["epochs"]) == 3
    assert record["epoch_val_losses"] == sorted(record["epoch_val_losses"])
    assert record["epoch_val_losses"][0] == pytest.approx(min(history["val_loss"]), abs=1e-4)
    assert record["adopted"] == (record["val_loss"] < min(history["val_loss"]))
    metrics = next(iter(averaged.card.metrics.values()))
    assert metrics["loss"] == (record["val_loss"] if record["adopted"] else round(min(history["val_loss"]), 4))

    shipped = averaged.load_model()
    folder = run / config.model.attention / "snapshots"
    epochs = record["epochs"] if record["adopted"] else record["epochs"][:1]  # the average, or the best epoch
    expected = averaged_weights(shipped, [folder / EpochSnapshots.file_name(e) for e in epochs])
    for a, b in zip(shipped.get_weights(), expected):
        np.testing.assert_allclose(a, b, atol=2e-3, rtol=2e-3)  # float16 storage


# ------------------------------------------------------------ the service
def test_translator_finds_installed_packages(translator):
    assert translator.directions == [("en", "fr")]
    assert translator.models == ["translate-en-fr"]
    with pytest.raises(Exception, match="en→ko"):
        translator.translate("one", "en", "ko")


def test_translate_returns_n_best_with_attention(translator):
    result = translator.translate("three one four", "en", "fr", TranslateOptions(beam_size=4, n_best=3))
    assert result.text == "trois un quatre"
    assert len(result.hypotheses) == 3
    scores = [h.score for h in result.hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert len({h.text for h in result.hypotheses}) == 3
    for h in result.hypotheses:
        assert h.attention.shape == (len(h.pieces), len(result.source_pieces))
        np.testing.assert_allclose(h.attention.sum(1), 1.0, atol=1e-5)
    assert result.model == "translate-en-fr" and (result.src_lang, result.tgt_lang) == ("en", "fr")
    assert set(result.timings) >= {"encode", "search", "total"}
    greedy = translator.translate("three one four", "en", "fr", TranslateOptions(beam_size=1))
    assert greedy.text == "trois un quatre"


def test_the_service_stops_beams_by_the_current_bound_unless_told_exact(translator, monkeypatch):
    import nlpcore.decoding as decoding

    seen, real = [], decoding.beam_search
    monkeypatch.setattr(decoding, "beam_search", lambda *a, **k: seen.append(k["stopping"]) or real(*a, **k))
    for options in (TranslateOptions(), TranslateOptions(stopping="exact")):
        assert translator.translate("three one four", "en", "fr", options).text == "trois un quatre"
    assert seen == ["current", "exact"]
    with pytest.raises(ValueError, match="stopping must be one of exact, current"):
        TranslateOptions(stopping="early")


def test_paragraphs_and_sentences_keep_their_layout(translator):
    text = "one two.  three four!\n\nfive six\nseven"
    result = translator.translate(text, "en", "fr")
    paragraphs = result.text.split("\n")
    assert len(paragraphs) == 4 and paragraphs[1] == ""
    assert paragraphs[0].count(" ") >= 3 and "cinq six" in paragraphs[2] and "sept" in paragraphs[3]
    best = result.hypotheses[0]
    assert best.attention.shape == (len(best.pieces), len(result.source_pieces))
    np.testing.assert_allclose(best.attention.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("language, paragraph, sentences", [
    ("en", "Dr. Smith lives in the U.S. He is a doctor.", ["Dr. Smith lives in the U.S.", "He is a doctor."]),
    ("en", 'He said "I love you." Then he left.', ['He said "I love you."', "Then he left."]),
    ("en", "Visit https://example.com/a.b?x=1 for details. Thanks!",
     ["Visit https://example.com/a.b?x=1 for details.", "Thanks!"]),
    ("fr", "M. Jackson est notre professeur. Il est là.", ["M. Jackson est notre professeur.", "Il est là."]),
    ("ko", '안녕하세요. 저는 "학생"입니다. 네!', ["안녕하세요.", '저는 "학생"입니다.', "네!"]),
    ("ko", "Wait... what?! Really", ["Wait...", "what?!", "Really"]),
])
def test_sentences_end_where_the_language_ends_them(language, paragraph, sentences):
    from nlpcore.translation import split_sentences

    assert split_sentences(paragraph, language) == sentences


def test_paragraph_parts_keep_markers_addresses_and_emoji_and_read_text_as_sentences():
    from nlpcore.translation import Part, paragraph_parts

    def read(paragraph, language="en", sentence_input=True):
        return [(p.text, p.source) for p in paragraph_parts(paragraph, language, sentence_input)]

    assert read("1. buy milk") == [("1.", None), ("buy milk", "Buy milk.")]
    assert read("(C) The job is done.") == [("(C)", None), ("The job is done.", "The job is done.")]
    assert read("😀 i am happy 👨\u200d👩\u200d👧!") == [("😀", None), ("i am happy", "I am happy."),
                                                        ("👨\u200d👩\u200d👧", None), ("!", None)]
    assert read("Write to tom@example.com or see www.example.com/x.") == [
        ("Write to", "Write to."), ("tom@example.com", None), ("or see", "or see."), ("www.example.com/x", None),
        (".", None)]
    assert read("I LOVE YOU SO MUCH!") == [("I LOVE YOU SO MUCH!", "I love you so much!")]
    assert read("i think i'm late") == [("i think i'm late", "I think I'm late.")]
    assert read("so did i, i.e. the i-th one") == [("so did i, i.e. the i-th one", "So did I, i.e. the i-th one.")]
    assert read("je t'aime", "fr") == [("je t'aime", "Je t'aime.")]
    assert read("사랑해 ㅋㅋ", "ko") == [("사랑해 ㅋㅋ", "사랑해 ㅋㅋ")]  # Korean: as it is
    assert read("NASA is great.") == [("NASA is great.", "NASA is great.")]
    assert read("i love you", sentence_input=False) == [("i love you", "i love you")]
    upper, = paragraph_parts("I LOVE YOU", "en")
    assert upper.upper and upper.closed and not upper.opened
    after_emoji = paragraph_parts("😀 for details", "en")[1]
    assert after_emoji.opened and not after_emoji.upper
    assert isinstance(after_emoji, Part)


def test_translations_take_their_parts_place():
    from nlpcore.translation import _fit, paragraph_parts

    upper, = paragraph_parts("I LOVE YOU", "en")
    assert _fit("Je t'aime.", upper) == "JE T'AIME"
    closed, = paragraph_parts("i love you", "en")
    assert _fit("Je t'aime.", closed) == "Je t'aime"
    assert _fit("Je t'aime...", closed) == "Je t'aime..."
    stretch = paragraph_parts("😀 for details.", "en")[1]
    assert _fit("Pour plus de détails.", stretch) == "pour plus de détails."
    whole, = paragraph_parts("I love you.", "en")
    assert _fit("Je t'aime.", whole) == "Je t'aime."


@pytest.mark.parametrize("text", ["", "   ", "\n\n", " \t\n "])
def test_empty_input_gives_empty_translation(translator, text):
    result = translator.translate(text, "en", "fr")
    assert result.text == "" and result.source == text


def test_kept_parts_come_back_as_they_were(translator):
    result = translator.translate("1. three one 😀 four\n- nine https://example.com/9", "en", "fr")
    assert result.text == "1. trois un 😀 quatre\n- neuf https://example.com/9"
    assert translator.translate("😀 👍", "en", "fr").text == "😀 👍"


def test_batch_matches_single_translations(translator):
    texts = ["one two three", "", "nine eight. seven", "one two three"]
    batch = translator.translate_batch(texts, "en", "fr")
    assert [t.text for t in batch] == [translator.translate(t, "en", "fr").text for t in texts]
    assert batch[1].text == ""


def test_long_input_is_cut_into_chunks(translator):
    long = " ".join(EN[i % 10] for i in range(400))  # far over max_source_length pieces, no full stop
    model = translator.model("en", "fr")
    limit = model.model_config.max_source_length
    chunks = model.prepare(long)
    assert len(chunks) == 4 and all(len(ids) <= limit for ids, _ in chunks)
    assert [i for ids, _ in chunks for i in ids] == model.source_tokenizer.encode(long)
    result = translator.translate(long, "en", "fr", TranslateOptions(beam_size=2))
    assert len(result.source_pieces) == 400 and result.text
    best = result.hypotheses[0]
    assert best.attention.shape == (len(best.pieces), 400)


def test_unknown_pieces_are_replaced_from_the_source(translator):
    """An <unk> in the output takes the most-attended source piece."""
    from nlpcore.decoding import SearchHypothesis
    from nlpcore.tokenizer import UNK_ID

    model = translator.model("en", "fr")
    ids = model.target_tokenizer.encode("trois")
    found = SearchHypothesis(ids=tuple(ids) + (UNK_ID,), score=-1.0, log_prob=-1.0,
                             attention=np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)[: len(ids) + 1])
    hypothesis = model.to_hypothesis(found, ["▁three", "▁Zorglub"], TranslateOptions())
    assert hypothesis.text.endswith("Zorglub")


# ------------------------------------------------------------ the command line
def _run_cli(args, stdin):
    code = ("import sys, argparse, json; from nlpcore.translation import cli_translate; "
            "sys.exit(cli_translate(argparse.Namespace(**json.loads(sys.argv[1]))))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # MALBEOT_HOME / MALBEOT_ASSETS from the fixtures
    return subprocess.run([sys.executable, "-c", code, json.dumps(args)], input=stdin, capture_output=True,
                          env=env, timeout=300)


def test_cli_writes_one_line_per_input_line(installed):
    lines = ["one two", "", "three four five. six", "seven", "   ", "eight nine"]
    stdin = ("\n".join(lines) + "\n").encode("utf-8") + b"\xff\xfe broken\n"
    out = _run_cli({"src": "en", "tgt": "fr", "beam": 3, "json": True, "texts": []}, stdin)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    records = [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]
    assert len(records) == len(lines) + 1
    assert [r["translation"] == "" for r in records] == [False, True, False, False, True, False, True]
    assert records[0]["translation"] == "un deux" and "error" in records[-1]

    plain = _run_cli({"src": "en", "tgt": "fr", "beam": 1, "json": False, "texts": []},
                     "\n".join(lines).encode("utf-8"))
    assert plain.returncode == 0
    assert plain.stdout.decode("utf-8").split("\n")[:-1] == [r["translation"] for r in records[:-1]]

    args = _run_cli({"src": "en", "tgt": "fr", "beam": 5, "json": False, "texts": ["one", "two\nthree"]}, b"")
    assert args.stdout.decode("utf-8").splitlines() == ["un", "deux trois"]

    missing = _run_cli({"src": "fr", "tgt": "en", "beam": 5, "json": False, "texts": ["un"]}, b"")
    assert missing.returncode == 1 and b"fr\xe2\x86\x92en" in missing.stderr


def test_eval_scores_a_package_on_its_validation_split_and_on_a_file(installed, trained, tmp_path, capsys):
    from nlpcore.cli import main

    package, config = trained
    assert main(["eval", "--model", "translate-en-fr", "--beam", "3", "--json"]) == 0
    split = json.loads(capsys.readouterr().out)
    assert split["bleu"] == package.card.metrics[next(iter(package.card.metrics))]["bleu"]  # as when trained
    assert split["length_penalty"] == config.length_penalty
    assert main(["eval", "--model", "translate-en-fr", "--beam", "3", "--length-penalty", "2.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["length_penalty"] == 2.5  # another penalty, to compare
    assert split["stopping"] == "current"
    assert main(["eval", "--model", "translate-en-fr", "--beam", "3", "--stopping", "exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stopping"] == "exact"  # the other beam stopping rule
    assert main(["eval", "--model", "translate-en-fr", "--length-penalty", "-1"]) == 1
    assert "length_penalty" in capsys.readouterr().err

    pairs = number_pairs(40, seed=7)
    right = tmp_path / "right.tsv"
    right.write_text("english\tfrench\n" + "".join(f"{en}\t{fr}\n" for en, fr in pairs), encoding="utf-8")
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("english\tfrench\n" + "".join(f"{en}\t{fr}\n" for (en, _), (_, fr) in
                                                    zip(pairs, pairs[1:] + pairs[:1])), encoding="utf-8")
    scores = []
    for path in (right, wrong):
        assert main(["eval", "--model", "translate-en-fr", "--input", str(path), "--source-column", "english",
                     "--target-column", "french", "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0]["sentences"] == 40 and scores[0]["bleu"] > scores[1]["bleu"] + 20

    assert main(["eval", "--model", "translate-en-fr", "--input", str(right)]) == 1  # no en/fr columns
    assert "'en'" in capsys.readouterr().err


def test_bench_translate_names_a_missing_direction(installed, capsys):
    from nlpcore.cli import main

    assert main(["bench", "translate", "--direction", "ko-en"]) == 1
    assert "ko-en" in capsys.readouterr().err


# ------------------------------------------------------------ fast path vs naive path
def test_numpy_search_equals_keras_predict_search(translator):
    """Beam search over the NumPy step and over per-step ``predict`` finds the same hypotheses."""
    from nlpcore.decoding import beam_search
    from nlpcore.tokenizer import BOS_ID
    from nlpcore.train.common import pad_batch
    from nlpcore.translation import KerasStepDecoder

    model = translator.model("en", "fr")
    sentences = ["three one four one", "five nine two"]
    source = pad_batch(model.source_tokenizer.encode(sentences))
    naive = KerasStepDecoder(model.keras_model, model.model_config)
    slow = beam_search(naive.step, [BOS_ID] * 2, naive.start(source), 3, 12, n_best=2, length_penalty_alpha=0.6,
                       stopping=TranslateOptions().stopping)
    fast = model.search(model.source_tokenizer.encode(sentences), TranslateOptions(beam_size=3, n_best=2,
                                                                                    no_repeat_ngram=0))
    for a, b in zip(slow, fast):
        assert [h.ids for h in a] == [h.ids for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-4)
        np.testing.assert_allclose(a[0].attention, b[0].attention, atol=1e-5)


def test_blas_threads_limits_and_restores_the_setting():
    from threadpoolctl import threadpool_info

    from nlpcore.inference import blas_threads

    def blas_counts():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_counts()
    if not before:
        pytest.skip("NumPy here links no BLAS that threadpoolctl can control")
    with blas_threads(1):
        assert set(blas_counts()) == {1}
    assert blas_counts() == before


def test_service_module_imports_no_framework():
    code = ("import sys, nlpcore.translation; "
            "assert not [m for m in ('tensorflow', 'jax', 'keras') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _repo_config(name: str):
    """A translation config of the repository's configs/ folder."""
    from pathlib import Path

    from nlpcore.config import load_config
    from nlpcore.train.translation import TranslationTrainConfig

    return load_config(TranslationTrainConfig, Path(__file__).resolve().parent.parent / "configs" / f"{name}.yaml")


@pytest.mark.parametrize("variant", ["", "-cpu"])
@pytest.mark.parametrize("direction", ["en-fr", "fr-en", "ko-en", "en-ko"])
def test_shipped_configs_load(direction, variant):
    from nlpcore.train.translation import TranslationTrainConfig

    config = _repo_config(f"translate-{direction}{variant}")
    assert (config.source, config.target) == tuple(direction.split("-"))
    assert config.name == f"translate-{direction}" and config.output.startswith(config.run_dir)
    assert (config.time_budget_minutes > 0) == (variant == "-cpu")
    if config.target == "ko":
        assert config.target_tokenizer.character_coverage == 0.9995
    if config.name == "translate-en-fr":  # the recipe stores what the shipped package stores
        from nlpcore.packages import find_package, read_card

        card = read_card(find_package(config.name))
        assert config.mantissa_bits == card.extra["weights_mantissa_bits"] == 9
        assert config.length_penalty == card.extra["decoding"]["length_penalty"]
    if config.source == "ko":
        assert config.source_tokenizer.character_coverage == 0.9995
    if config.init_from:  # a shipped package that shares a language, without the attention comparison
        from nlpcore.packages import find_package, load_package

        origin = load_package(find_package(config.init_from)).config(TranslationTrainConfig)
        assert origin.source == config.source or origin.target == config.target
        assert not config.compare_attention


def test_back_translation_configs_continue_the_cpu_recipe():
    """Steps 2 to 5 of translate-ko-en start from the previous step's package and add
    tables that ``nlpcore backtranslate`` writes; own run folders keep the checkpoints apart.
    Step 6, the shipped package's, continues step 5 on the real pairs alone."""
    from nlpcore.packages import find_package, load_package
    from nlpcore.train.translation import TranslationTrainConfig

    steps = [_repo_config(f"translate-ko-en-{step}") for step in ("cpu", "bt", "bt2", "bt3", "tbt")]
    last = _repo_config("translate-ko-en-ft")  # then the real pairs alone, with subword regularization
    package = load_package(find_package("translate-ko-en"))
    shipped = package.config(TranslationTrainConfig)
    assert shipped.length_penalty == last.length_penalty == package.card.extra["decoding"]["length_penalty"]
    channel = ("channel_model", "channel_weight", "channel_candidates", "channel_max_source")
    assert [getattr(shipped, f) for f in channel] == [getattr(last, f) for f in channel]
    assert [package.card.extra["decoding"][f] for f in channel[:2]] == [last.channel_model, last.channel_weight]
    assert last.init_from == steps[-1].output and last.run_dir not in {s.run_dir for s in steps}
    assert not last.extra_corpora and last.learning_rate < steps[-1].learning_rate and last.subword_sampling > 0
    assert package.card.extra["subword_sampling"] == {"alpha": last.subword_sampling,
                                                      "sides": list(last.subword_sampling_sides)}
    assert (shipped.subword_sampling, shipped.subword_sampling_sides) == (last.subword_sampling,
                                                                          last.subword_sampling_sides)
    for first, second in zip(steps, steps[1:]):
        assert second.init_from == first.output and second.run_dir != first.run_dir
        assert second.extra_corpora and all(t.startswith("runs/bt/") for t in second.extra_corpora)
        assert (second.source, second.target, second.corpus) == (first.source, first.target, first.corpus)
        assert (second.validation_fraction, second.normalize_text) == (first.validation_fraction, first.normalize_text)


def test_tagged_back_translation_configs_are_the_shipped_en_to_ko_recipe():
    from nlpcore.packages import find_package, load_package
    from nlpcore.train.translation import TranslationTrainConfig

    first, second, last = (_repo_config(f"translate-en-ko-{step}") for step in ("tbt", "tbt2", "ft"))
    assert first.init_from == "translate-en-ko" and first.run_dir != "runs/translate-en-ko-cpu"
    assert second.init_from == first.output and second.run_dir != first.run_dir  # round two continues round one
    for config in (first, second):
        assert config.tag_extra_corpora
        assert config.extra_corpora and all(t.startswith("runs/bt/") for t in config.extra_corpora)
    # the last step fine-tunes round two on the real pairs alone, at a lower rate
    assert last.init_from == second.output and last.run_dir not in (first.run_dir, second.run_dir)
    assert not last.extra_corpora and last.learning_rate < second.learning_rate
    assert (last.corpus, last.validation_fraction) == (second.corpus, second.validation_fraction)
    assert second.average_checkpoints > 1 and last.average_checkpoints > 1
    shipped = load_package(find_package("translate-en-ko"))
    assert "extra_corpora" not in shipped.card.extra
    assert any(d.name == "koconovel-bt" for d in shipped.card.data)  # round two's data, through init_from
    assert shipped.card.extra["checkpoint_average"]["adopted"]
    # with subword regularization on the English side only: the decoder learns the segmentation it produces
    assert last.subword_sampling > 0 and last.subword_sampling_sides == ("source",)
    assert shipped.card.extra["subword_sampling"] == {"alpha": last.subword_sampling, "sides": ["source"]}
    # the package decodes with the length penalty its recipe scored it with
    assert shipped.config(TranslationTrainConfig).length_penalty == last.length_penalty
    assert shipped.card.extra["decoding"]["length_penalty"] == last.length_penalty
    channel = ("channel_model", "channel_weight", "channel_candidates", "channel_max_source")
    assert [getattr(shipped.config(TranslationTrainConfig), f) for f in channel] == [getattr(last, f) for f in channel]
    # the reverse package reranks only when asked: it was trained on most of these validation pairs
    assert last.channel_model == "translate-ko-en" and last.channel_weight == 0


def test_gpu_config_loads():
    config = _repo_config("translate-en-fr-gpu")
    assert (config.name, config.source, config.target) == ("translate-en-fr", "en", "fr")
    assert config.time_budget_minutes > 0 and config.pad_multiple >= 16 and config.max_tokens == 0
    # its own run folder: a --resume never picks up the CPU recipe's checkpoints
    assert config.output.startswith(config.run_dir) and config.run_dir != "runs/translate-en-fr-cpu"


def test_batch_shapes_per_backend():
    """JAX gets fixed-size batches with widths rounded to 16 (or the config's
    pad_multiple); TensorFlow keeps the token cap and exact widths."""
    from nlpcore.train.translation import TranslationTrainConfig, batch_shapes

    default, gpu = TranslationTrainConfig(max_tokens=3000), TranslationTrainConfig(max_tokens=3000, pad_multiple=32)
    assert batch_shapes(default, "jax") == (16, 0)
    assert batch_shapes(gpu, "jax") == (32, 0)
    assert batch_shapes(default, "tensorflow") == (1, 3000)
    assert batch_shapes(gpu, "tensorflow") == (32, 3000)


def test_load_without_packages_says_so(tmp_path, monkeypatch):
    from nlpcore.packages import PackageError
    from nlpcore.translation import Translator

    monkeypatch.setenv("MALBEOT_ASSETS", str(tmp_path / "no-assets"))
    with pytest.raises(PackageError, match="no translation model"):
        Translator.load()
