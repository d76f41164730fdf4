import gzip
import itertools
from pathlib import Path

import pytest

from nlpcore import data
from nlpcore.data import CorpusError


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


NSMC = 'id\ttext\tlabel\n1\t아 더빙.. 진짜 짜증나네요 목소리\t0\n2\t"따옴표 ""인용"" 포함"\t1\n3\t\t0\n4\t최고의 영화\t1\n'


def test_read_nsmc_quotes_and_empty(tmp_path):
    path = write_gz(tmp_path / "nsmc.tsv.gz", NSMC)
    rows = list(data.read_nsmc(path))
    assert [r.label for r in rows] == [0, 1, 1]
    assert rows[1].text == '따옴표 "인용" 포함'
    assert len(list(data.read_nsmc(path, keep_empty=True))) == 4


@pytest.mark.parametrize(
    "body, line, reason",
    [
        ("id\ttext\tlabel\n1\tgood\t1\n2\tbad\n", 3, "expected 3 fields"),
        ("id\ttext\tlabel\n1\tgood\t1\n2\tbad\tx\n", 3, "not an integer"),
        ("id\ttext\tlabel\n1\tgood\t7\n", 2, "not one of"),
        ("id\tsentence\tlabel\n1\tgood\t1\n", 1, "no column(s) 'text'"),
    ],
)
def test_malformed_tables_name_line_and_reason(tmp_path, body, line, reason):
    path = write_gz(tmp_path / "bad.tsv.gz", body)
    with pytest.raises(CorpusError) as info:
        list(data.read_nsmc(path))
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(path) in str(info.value) and f"line {line}" in str(info.value)


def test_empty_invalid_and_truncated_files(tmp_path):
    with pytest.raises(CorpusError, match="empty file"):
        list(data.read_nsmc(write_gz(tmp_path / "empty.tsv.gz", "")))
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes("id\ttext\tlabel\n1\tcaf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        list(data.read_nsmc(bad))
    whole = write_gz(tmp_path / "whole.tsv.gz", NSMC * 200).read_bytes()
    cut = tmp_path / "cut.tsv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CorpusError, match="cannot read file"):
        list(data.read_table(cut))
    with pytest.raises(CorpusError, match="file not found"):
        list(data.read_table(tmp_path / "nope.tsv"))


def test_ratings_follow_nsmc_rule(tmp_path):
    rows = "id\tmovie_id\trating\ttext\n" + "".join(f"{r}\t9\t{r}\t리뷰 {r}\n" for r in range(1, 11))
    got = list(data.read_nsmc_ratings(write_gz(tmp_path / "raw.tsv.gz", rows)))
    assert [(r.id, r.label) for r in got] == [("1", 0), ("2", 0), ("3", 0), ("4", 0), ("9", 1), ("10", 1)]
    assert [data.rating_to_label(r) for r in (5, 6, 7, 8)] == [None] * 4


def test_imdb_cleaning_and_parallel_both_ways(tmp_path):
    imdb = write_gz(tmp_path / "imdb.tsv.gz", 'id\ttext\tlabel\trating\npos_0\t"Great<br /><br />film,  ""really""."\t1\t9\n')
    assert next(data.read_imdb(imdb)).text == 'Great film, "really".'
    pairs = write_gz(tmp_path / "ko-en.tsv.gz", "ko\ten\tsource\tlicense\n안녕.\tHi.\ttatoeba\tCC-BY\n\tEmpty.\tx\ty\n")
    forward = list(data.read_parallel(pairs, "ko", "en"))
    backward = list(data.read_parallel(pairs, "en", "ko"))
    assert forward == [data.Pair("안녕.", "Hi.", "tatoeba", "CC-BY")]
    assert backward[0].source == "Hi." and backward[0].target == "안녕."


def test_documents_split_on_title_lines(tmp_path):
    text = "=== Book One — A ===\n\nline 1\nline 2\n=== Book Two — B ===\nother\n"
    books = list(data.read_gutenberg(write_gz(tmp_path / "g.txt.gz", text)))
    assert books == [("Book One — A", "line 1\nline 2"), ("Book Two — B", "other")]
    novels = list(data.read_koconovel(write_gz(tmp_path / "k.txt.gz", "### 1_제목\n본문 하나\n### 2_둘\n본문 둘\n")))
    assert [t for t, _ in novels] == ["1_제목", "2_둘"]


def test_user_files(tmp_path):
    txt = tmp_path / "in.txt"
    txt.write_text("첫 줄\n\nthird line\n", encoding="utf-8")
    assert list(data.read_user_texts(txt)) == [(1, "첫 줄"), (2, ""), (3, "third line")]
    csv_path = tmp_path / "in.csv"
    csv_path.write_text('id,text,stars\n1,"Good, really good",5\n2,Bad,1\n', encoding="utf-8")
    assert [t for _, t in data.read_user_texts(csv_path)] == ["Good, really good", "Bad"]
    assert [t for _, t in data.read_user_texts(csv_path, column="stars")] == ["5", "1"]
    with pytest.raises(CorpusError, match="no column"):
        list(data.read_user_texts(csv_path, column="review"))
    tsv = tmp_path / "in.tsv"
    tsv.write_text("a\tb\n1\t2\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="choose one with --column"):
        list(data.read_user_texts(tsv))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,1\nbroken\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        list(data.read_user_texts(ragged))
    assert info.value.line == 3
    with pytest.raises(CorpusError, match="unsupported file type"):
        list(data.read_user_texts(tmp_path / "in.docx"))


def test_split_is_deterministic_leak_free_and_sized():
    items = [f"review {i}" for i in range(20000)] + ["duplicate"] * 50
    train, val = data.train_validation_split(items, 0.1)
    train2, val2 = data.train_validation_split(list(reversed(items)), 0.1)
    assert sorted(val) == sorted(val2) and len(train) == len(train2)
    assert not ({"duplicate"} & set(train) and {"duplicate"} & set(val))
    assert 0.09 < len(val) / len(items) < 0.11
    other_salt = data.train_validation_split(items, 0.1, salt="other")[1]
    assert set(other_salt) != set(val)
    with pytest.raises(ValueError):
        data.train_validation_split(items, 1.5)


def test_bucket_by_length_groups_similar_lengths():
    lengths = [1, 50, 2, 49, 3, 48, 4, 47]
    batches = data.bucket_by_length(lengths, 2, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(abs(lengths[b[0]] - lengths[b[1]]) <= 1 for b in batches)


# ------------------------------------------------------------ the real corpora
REAL = data.data_dir()
needs_data = pytest.mark.skipif(not REAL.is_dir(), reason=f"corpora not present at {REAL}")


@needs_data
def test_every_shipped_corpus_reads():
    assert len(list(data.read_nsmc(data.corpus_path("nsmc"), keep_empty=True))) == 150_000
    assert sum(1 for _ in data.read_imdb(data.corpus_path("imdb"))) == 25_000
    assert sum(1 for _ in data.read_parallel(data.corpus_path("en-fr"), "en", "fr")) == 140_552
    ko_en = list(data.read_parallel(data.corpus_path("ko-en"), "ko", "en"))
    assert len(ko_en) == 19_670 and all(p.license for p in ko_en)
    assert sum(1 for _ in data.read_chatbot(data.corpus_path("ko_chatbot"))) == 11_823
    assert len(list(data.read_gutenberg(data.corpus_path("gutenberg")))) == 28
    assert len(list(data.read_koconovel(data.corpus_path("koconovel")))) == 45
    assert len(data.read_text(data.corpus_path("tinyshakespeare"))) == 1_003_854
    raw = list(itertools.islice(data.read_nsmc_ratings(data.corpus_path("nsmc_raw")), 1000))
    assert {r.label for r in raw} == {0, 1}
    with pytest.raises(CorpusError, match="unknown corpus"):
        data.corpus_path("no-such-corpus")
