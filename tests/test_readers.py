"""Readers and load_corpus: exact counts on the shared corpora, and one test per error message
(file, line, expectation) on tiny files written here."""
import logging
import os
import socket

import pytest

from textrnn.data import corpus_statistics, format_statistics, load_corpus, read_report
from textrnn.data import loading
from textrnn.data.cards import default_data_dir
from textrnn.errors import ConfigError, DataFormatError, TextrnnError

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not (DATA / "conll2003").is_dir(), reason="shared corpora not present")


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def stats_by_split(dsdict):
    return {row["split"]: row for row in corpus_statistics(dsdict)}


# --- the shared corpora: exact counts from the data README ---------------------------------------


@needs_data
def test_conll2003_counts():
    ds = load_corpus("conll2003")
    stats = stats_by_split(ds)
    expected = {"train": (14041, 203621, 23499, 946), "validation": (3250, 51362, 5942, 216),
                "test": (3453, 46435, 5648, 231)}
    assert list(ds) == ["train", "validation", "test"]
    for split, (sentences, tokens, entities, docstart) in expected.items():
        assert (stats[split]["examples"], stats[split]["tokens"], stats[split]["entities"]) == \
            (sentences, tokens, entities)
        assert read_report(ds[split])["counts"]["docstart_lines"] == docstart
    assert set(stats["train"]["entity_types"]) == {"PER", "LOC", "ORG", "MISC"}
    names = ds["train"].features["tags"].feature.names
    assert names == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    first = ds["train"][0]
    assert first["tokens"][:3] == ["EU", "rejects", "German"]
    assert [names[i] for i in first["tags"]][:3] == ["B-ORG", "O", "B-MISC"]


@needs_data
def test_conllpp_counts():
    ds = load_corpus("conllpp")
    assert list(ds) == ["test"]
    row = stats_by_split(ds)["test"]
    assert (row["examples"], row["tokens"], row["entities"]) == (3453, 46435, 5702)
    bioes = load_corpus("conllpp", convert_to="BIOES")  # same entities, read back in the new scheme
    assert read_report(bioes["test"])["scheme"] == "BIOES"
    assert len(bioes["test"].features["tags"].feature.names) == 17
    assert stats_by_split(bioes)["test"]["entity_types"] == row["entity_types"]


@needs_data
def test_sst2_counts_and_label_names():
    ds = load_corpus("sst2")
    assert {s: ds[s].num_rows for s in ds} == {"train": 6920, "validation": 872, "test": 1821}
    assert ds["train"].features["label"].names == ["negative", "positive"]
    assert stats_by_split(ds)["train"]["labels"] == {"negative": 3310, "positive": 3610}
    first = ds["train"][0]  # train.csv line 2: label 1 = positive
    assert first["text"].startswith("A stirring, funny") and first["label"] == 1


@needs_data
def test_chnsenticorp_counts_and_dev_as_test():
    ds = load_corpus("chnsenticorp")
    assert {s: ds[s].num_rows for s in ds} == {"train": 9600, "test": 1200}
    assert stats_by_split(ds)["train"]["labels"] == {"negative": 4801, "positive": 4799}
    assert read_report(ds["test"])["path"].endswith("dev.tsv")


@needs_data
def test_resume_ner_counts():
    with pytest.warns(UserWarning, match="repaired 4 sentences"):
        ds = load_corpus("resume_ner")
    stats = stats_by_split(ds)
    for split, (sentences, chars) in {"train": (3821, 124099), "validation": (463, 13890),
                                      "test": (477, 15100)}.items():
        assert (stats[split]["examples"], stats[split]["tokens"]) == (sentences, chars)
    assert set(stats["train"]["entity_types"]) == {"NAME", "CONT", "RACE", "TITLE", "EDU", "ORG", "PRO", "LOC"}
    assert read_report(ds["train"])["counts"]["repaired_sentences"] == 4
    assert read_report(ds["train"])["scheme"] == "BMES"


# --- CoNLL / BMES errors ---------------------------------------------------------------------------


CONLL = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"


def test_too_few_columns(tmp_path):
    path = write(tmp_path / "train.txt", "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn\n")
    with pytest.raises(DataFormatError) as info:
        load_corpus(path)
    assert str(info.value) == f"{path}:5: expected at least 2 columns, found 1"
    assert (info.value.path, info.value.line) == (str(path), 5)


def test_column_count_must_not_change(tmp_path):
    path = write(tmp_path / "train.txt", CONLL.replace("rejects VBZ B-VP O", "rejects VBZ O"))
    with pytest.raises(DataFormatError, match=r"train.txt:4: expected 4 columns \(as on line 3\), found 3"):
        load_corpus(path)


@pytest.mark.parametrize("bad, fragment", [("X-PER", "prefix X-"), ("B-", "type after B- is empty"),
                                           ("E-PER", "not one of B-, I- in IOB2")])
def test_malformed_tag(tmp_path, bad, fragment):
    path = write(tmp_path / "train.txt", CONLL.replace("Blackburn NNP I-NP I-PER", f"Blackburn NNP I-NP {bad}"))
    with pytest.raises(DataFormatError, match=f"train.txt:7: malformed tag '{bad}'.*{fragment}"):
        load_corpus(path, scheme="IOB2")


def test_invalid_sequence_raises_at_the_bad_tag_and_repair_fixes_it(tmp_path):
    path = write(tmp_path / "train.txt", "EU B-ORG\nsaid O\nBlackburn I-PER\nleft O\n")
    with pytest.raises(DataFormatError, match=r"train.txt:3: tag 'I-PER' after 'O' is invalid in IOB2.*repair"):
        load_corpus(path, scheme="IOB2")
    with pytest.warns(UserWarning, match="repaired 1 sentences"):
        ds = load_corpus(path, scheme="IOB2", on_invalid="repair")
    names = ds["train"].features["tags"].feature.names
    assert [names[i] for i in ds["train"][0]["tags"]] == ["B-ORG", "O", "B-PER", "O"]
    assert read_report(ds["train"])["counts"]["repaired_sentences"] == 1


def test_bmes_sentence_may_not_end_inside_an_entity(tmp_path):
    path = write(tmp_path / "train.char.bmes", "高 B-NAME\n勇 E-NAME\n\n中 B-CONT\n国 M-CONT\n")
    with pytest.raises(DataFormatError, match=r"train.char.bmes:5: tag 'M-CONT' may not end a sentence in BMES"):
        load_corpus(path)


def test_label_outside_declared_tag_set(tmp_path):
    path = write(tmp_path / "train.txt", CONLL.replace("B-PER", "B-PERSON").replace("I-PER\n", "I-PERSON\n"))
    with pytest.raises(DataFormatError, match=r"train.txt:6: tag 'B-PERSON' is not in the declared label set"):
        load_corpus(path, label_names=["O", "B-ORG", "I-ORG", "B-PER", "I-PER"])


def test_non_utf8_byte_reports_its_line(tmp_path):
    path = write(tmp_path / "train.txt", b"EU B-ORG\nrejects O\nM\xfcller B-PER\n")
    with pytest.raises(DataFormatError, match=r"train.txt:3: byte 0xfc at column 2 is not UTF-8"):
        load_corpus(path)


@pytest.mark.parametrize("text, fragment", [("", "the file is empty"), ("\n\n", "the file holds only whitespace"),
                                            ("-DOCSTART- -X- -X- O\n\n", "no sentences found")])
def test_empty_files(tmp_path, text, fragment):
    path = write(tmp_path / "train.txt", text)
    with pytest.raises(DataFormatError, match=f"train.txt: {fragment}"):
        load_corpus(path)


def test_skipped_lines_are_counted_and_logged(tmp_path, caplog):
    path = write(tmp_path / "train.txt", CONLL + "\n\n\n")
    with caplog.at_level(logging.INFO, logger="textrnn.data"):
        ds = load_corpus(path)
    counts = read_report(ds["train"])["counts"]
    assert (counts["sentences"], counts["tokens"], counts["docstart_lines"], counts["extra_blank_lines"]) == (2, 4, 1, 2)
    assert "1 docstart lines, 2 extra blank lines" in caplog.text


def test_iob1_is_converted_to_iob2_and_inferred(tmp_path):
    text = "Peter I-PER\nBlackburn I-PER\nJohn B-PER\nin O\nBonn I-LOC\n"
    path = write(tmp_path / "train.txt", text)
    ds = load_corpus(path, scheme="IOB1", convert_to="IOB2")
    names = ds["train"].features["tags"].feature.names
    assert [names[i] for i in ds["train"][0]["tags"]] == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert read_report(ds["train"])["source_scheme"] == "IOB1"
    # without a scheme, tags that are invalid IOB2 but valid IOB1 are read as IOB1
    ds = load_corpus(path, convert_to="BIOES")
    names = ds["train"].features["tags"].feature.names
    assert [names[i] for i in ds["train"][0]["tags"]] == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]


# --- CSV / TSV / JSONL errors ------------------------------------------------------------------


@pytest.mark.parametrize("body, line, fragment", [
    ("label,sentence\n1,good film\n0\n", 3, "expected at least 2 columns, found 1"),
    ("label,sentence\n1,good film\n,bad film\n", 3, "missing label: column 'label' is empty"),
    ("label,sentence\n1,good film\n0,  \n", 3, "empty text in column 'sentence'"),
    ("label,sentence\n1,good film\n2,so-so film\n", 3, r"label '2' is not in the declared label set \['0', '1'\]"),
    ('label,sentence\n1,"a film\nover two lines"\n,bad\n', 4, "missing label"),
])
def test_csv_errors(tmp_path, body, line, fragment):
    path = write(tmp_path / "train.csv", body)
    with pytest.raises(DataFormatError, match=f"train.csv:{line}: {fragment}"):
        load_corpus(path, text_column="sentence", label_names={"0": "negative", "1": "positive"})


def test_missing_named_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path / "train.csv", "label,sentence\n1,good film\n")
    with pytest.raises(DataFormatError, match=r"train.csv:1: no column named 'text'.*columns found: \['label', 'sentence'\]"):
        load_corpus(path)


def test_tsv_without_header_and_literal_quotes(tmp_path):
    path = write(tmp_path / "train.tsv", '他说"好"\tpositive\n\n不好\tnegative\n')
    ds = load_corpus(path, text_column=0, label_column=1, header=False)
    assert ds["train"]["text"] == ['他说"好"', "不好"]
    assert ds["train"].features["label"].names == ["negative", "positive"]
    assert read_report(ds["train"])["counts"]["blank_lines"] == 1
    write(tmp_path / "bad.tsv", "好\tpositive\n坏\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: expected at least 2 columns, found 1"):
        load_corpus(tmp_path / "bad.tsv", text_column=0, label_column=1, header=False)


def test_multi_label_csv(tmp_path):
    path = write(tmp_path / "train.csv", 'text,label\nrain and wind,weather|news\nscore,sport\n')
    ds = load_corpus(path, multi_label=True, label_sep="|")
    names = ds["train"].features["labels"].feature.names
    assert names == ["news", "sport", "weather"]
    assert [[names[i] for i in row] for row in ds["train"]["labels"]] == [["weather", "news"], ["sport"]]


def test_jsonl_classification_tagging_and_errors(tmp_path):
    path = write(tmp_path / "train.jsonl", '{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n')
    ds = load_corpus(path)
    assert ds["train"].features["label"].names == ["0", "1"] and ds["train"]["label"] == [1, 0]
    path = write(tmp_path / "ner.jsonl", '{"tokens": ["Peter", "left"], "tags": ["B-PER", "O"]}\n')
    assert load_corpus(path)["train"][0] == {"tokens": ["Peter", "left"], "tags": [1, 0]}
    write(tmp_path / "bad.jsonl", '{"text": "good", "label": 1}\n{"text": "bad", "label": 0\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: invalid JSON"):
        load_corpus(tmp_path / "bad.jsonl")
    write(tmp_path / "nokey.jsonl", '{"text": "good", "label": 1}\n{"sentence": "bad", "label": 0}\n')
    with pytest.raises(DataFormatError, match=r"nokey.jsonl:2: no key 'text'.*keys found: \['label', 'sentence'\]"):
        load_corpus(tmp_path / "nokey.jsonl")


# --- sources, caching, statistics --------------------------------------------------------------


def test_folder_of_splits_dict_and_label_union(tmp_path):
    write(tmp_path / "train.txt", "EU B-ORG\nsaid O\n")
    write(tmp_path / "dev.txt", "Bonn B-LOC\n")
    write(tmp_path / "test.txt", "Peter B-PER\nBlackburn I-PER\n")
    write(tmp_path / "notes.md", "not a split")
    ds = load_corpus(tmp_path)
    assert list(ds) == ["train", "validation", "test"]
    assert ds["train"].features["tags"].feature.names == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"]
    ds = load_corpus({"train": tmp_path / "train.txt", "test": tmp_path / "test.txt"}, splits="test")
    assert list(ds) == ["test"] and ds["test"].num_rows == 1
    with pytest.raises(ConfigError, match="no split 'dev'"):
        load_corpus(tmp_path, splits=["dev"])
    with pytest.raises(ConfigError, match="not a file, a folder, a named corpus"):
        load_corpus(tmp_path / "missing.txt")


def test_an_edited_file_is_not_served_from_the_cache(tmp_path):
    path = write(tmp_path / "train.txt", "EU B-ORG\n")
    assert load_corpus(path)["train"]["tokens"] == [["EU"]]
    write(path, "EU B-ORG\n\nBonn B-LOC\n")
    os.utime(path, ns=(1, 2))  # a new mtime even on a coarse clock
    assert load_corpus(path)["train"]["tokens"] == [["EU"], ["Bonn"]]


def test_each_file_is_checked_once_and_its_rows_read_once(tmp_path, monkeypatch):
    """Two streaming passes (check, then rows into Arrow); a cached load skips the second."""
    path = write(tmp_path / "train.txt", "Peter B-PER\nleft O\n")
    scans, rows = [], []
    scan, iter_rows = loading.scan_file, loading.iter_rows
    monkeypatch.setattr(loading, "scan_file", lambda *a, **k: scans.append(a) or scan(*a, **k))
    monkeypatch.setattr(loading, "iter_rows", lambda *a, **k: rows.append(a) or iter_rows(*a, **k))
    load_corpus(path, cache_dir=str(tmp_path / "cache"))
    assert (len(scans), len(rows)) == (1, 1)
    load_corpus(path, cache_dir=str(tmp_path / "cache"))
    assert (len(scans), len(rows)) == (2, 1)


def test_statistics_table(tmp_path):
    path = write(tmp_path / "train.txt", CONLL)
    rows = corpus_statistics(load_corpus(path))
    assert rows == [{"split": "train", "examples": 2, "tokens": 4, "entities": 2,
                     "entity_types": {"ORG": 1, "PER": 1}}]
    table = format_statistics(rows)
    assert table.splitlines()[0].split() == ["split", "examples", "tokens", "entities", "by", "type"]
    assert "ORG 1 · PER 1" in table


def test_hub_id_offline_raises_without_touching_the_network(monkeypatch, tmp_path):
    import datasets
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(TextrnnError, match="hub is unreachable.*Pass local files"):
        load_corpus("someone/some-corpus", cache_dir=str(tmp_path / "hub"))
