"""Issue 12's reader defects and issue 13.4's "your own files, first try", one test each:
columns given as 0, headerless CSV from the command line, unbalanced quotes, long fields, tag
schemes that differ between splits, non-UTF-8 input to predict, formats told by content."""
import json
import tracemalloc

import pytest

from textrnn.cli import build_parser, main
from textrnn.data import dataset_scheme, load_corpus, read_report, scan_file, text
from textrnn.errors import ConfigError, DataFormatError


def write(path, data):
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def tag_names(ds, i=0):
    names = ds.features["tags"].feature.names
    return [names[t] for t in ds[i]["tags"]]


# --- 12.3: column 0 ------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_tag_column_zero_is_a_clear_error_not_an_endless_loop(tmp_path):
    path = write(tmp_path / "train.conll", "B-PER John\nO left\n")
    with pytest.raises(ConfigError, match="token_column=0 and tag_column=0 name the same column"):
        load_corpus(path, tag_column=0)
    ds = load_corpus(path, tag_column=0, token_column=1)["train"]
    assert ds[0]["tokens"] == ["John", "left"] and tag_names(ds) == ["B-PER", "O"]


@pytest.mark.timeout(20)
def test_csv_text_and_label_in_the_same_column_is_an_error(tmp_path):
    path = write(tmp_path / "train.csv", "good,1\n")
    with pytest.raises(ConfigError, match="text_column=0 and label_column=0 name the same column 0"):
        load_corpus(path, text_column=0, label_column=0, header=False)


def test_cli_keeps_column_zero_and_header_false():
    from textrnn.cli import _data_kwargs

    args = build_parser().parse_args(["check", "x.conll", "--tag-column", "0", "--token-column", "1"])
    assert _data_kwargs(args)["tag_column"] == 0 and _data_kwargs(args)["token_column"] == 1
    args = build_parser().parse_args(["check", "x.csv", "--text-column", "0", "--label-column", "1",
                                      "--header", "false"])
    assert _data_kwargs(args)["header"] is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["check", "x.csv", "--header", "maybe"])


def test_cli_reads_tags_in_column_zero(tmp_path, capsys):
    path = write(tmp_path / "train.conll", "B-PER John\nO left\n")
    assert main(["check", str(path), "--tag-column", "0", "--token-column", "1"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["train"]["entity_types"] == {"PER": 1}


# --- 12.6: headerless CSV/TSV from the command line ------------------------------------------------


@pytest.mark.parametrize("name, body", [("train.csv", "good film,positive\nbad film,negative\n"),
                                        ("train.tsv", "good film\tpositive\nbad film\tnegative\n")])
def test_cli_headerless_table(tmp_path, capsys, name, body):
    path = write(tmp_path / name, body)
    assert main(["check", str(path), "--text-column", "0", "--label-column", "1", "--header", "false"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])["train"]
    assert out["documents"] == 2 and out["labels"] == {"negative": 1, "positive": 1}
    ds = load_corpus(path, text_column="0", label_column="1", header=False)["train"]
    assert ds["text"] == ["good film", "bad film"]


def test_header_false_reads_the_first_row_as_data(tmp_path):
    path = write(tmp_path / "train.csv", "text,label\ngood,1\n")
    assert load_corpus(path, text_column=0, label_column=1, header=False)["train"].num_rows == 2
    assert load_corpus(path)["train"].num_rows == 1


# --- 12.7: unbalanced quotes ---------------------------------------------------------------------


def rows_csv(n=300, broken=None, line_text='"unbalanced text'):
    lines = ["text,label"]
    for i in range(n):
        lines.append(f"{line_text},{i % 2}" if i == broken else f"text number {i},{i % 2}")
    return "\n".join(lines) + "\n"


def test_a_clean_csv_of_300_rows_reads_300(tmp_path):
    assert load_corpus(write(tmp_path / "train.csv", rows_csv()))["train"].num_rows == 300


@pytest.mark.parametrize("body, line, fragment", [
    # the quote closes on the next line and text follows it
    (rows_csv(broken=100).replace("text number 101", '"text" number 101'), 102, "followed by more text"),
    # the quote never closes
    (rows_csv(broken=298), 300, "never closes"),
    # the quote closes before the delimiter of the next line: both lines read as records
    (rows_csv(broken=100).replace("text number 101,1", 'text number 101",1'), 102, "each read as a record"),
])
def test_an_unbalanced_quote_is_an_error_at_its_line(tmp_path, body, line, fragment):
    path = write(tmp_path / "train.csv", body)
    with pytest.raises(DataFormatError, match=f"train.csv:{line}: .*{fragment}"):
        load_corpus(path)


def test_quoted_fields_may_span_lines(tmp_path):
    body = 'text,label\n"a film\nover two lines",1\n"another, with a comma\nand, more",0\nplain,1\n'
    ds = load_corpus(write(tmp_path / "train.csv", body))["train"]
    assert ds["text"] == ["a film\nover two lines", "another, with a comma\nand, more", "plain"]


def test_multiline_trusts_fields_that_look_like_merged_rows(tmp_path):
    body = rows_csv(n=4, broken=1).replace("text number 2,0", 'text number 2",0')
    path = write(tmp_path / "train.csv", body)
    with pytest.raises(DataFormatError, match="multiline=True"):
        load_corpus(path)
    ds = load_corpus(path, multiline=True)["train"]
    assert ds.num_rows == 3 and ds["text"][1] == "unbalanced text,1\ntext number 2"


# --- 12.8: long fields --------------------------------------------------------------------------


def test_a_field_over_131072_characters_reads(tmp_path):
    long = "word " * 60_000
    path = write(tmp_path / "train.tsv", f"{long}\tpositive\nshort\tnegative\n")
    ds = load_corpus(path, text_column=0, label_column=1, header=False)["train"]
    assert len(ds[0]["text"]) == len(long)
    path = write(tmp_path / "train.csv", f'text,label\n"{long}",1\n')
    assert len(load_corpus(path)["train"][0]["text"]) == len(long)


def test_a_field_over_the_limit_is_a_file_line_error(tmp_path, monkeypatch):
    from textrnn.data import tables

    monkeypatch.setattr(tables, "MAX_FIELD", 1000)
    monkeypatch.setattr(tables, "_allow_long_fields", lambda: tables.csv.field_size_limit(1000))
    try:
        path = write(tmp_path / "train.csv", 'text,label\nok,1\n"' + "x" * 2000 + '",0\n')
        with pytest.raises(DataFormatError, match=r"train.csv:3: a field longer than 1,000 characters"):
            load_corpus(path)
    finally:
        tables.csv.field_size_limit(tables.MAX_FIELD)


# --- 12.9: tag schemes ----------------------------------------------------------------------------


IOB2 = "John B-PER\nSmith I-PER\nleft O\n\nBonn B-LOC\n"
BIOES = "John B-PER\nSmith E-PER\nleft O\n\nBonn S-LOC\n"
IOB1 = "John I-PER\nSmith I-PER\nleft O\n\nBonn I-LOC\n"


def test_splits_in_different_schemes_are_an_error_naming_both_files_and_the_flag(tmp_path, capsys):
    train, dev = write(tmp_path / "train.conll", IOB2), write(tmp_path / "dev.conll", BIOES)
    with pytest.raises(DataFormatError) as info:
        load_corpus({"train": train, "validation": dev})
    msg = str(info.value)
    assert str(dev) in msg and str(train) in msg and "BIOES" in msg and "convert_to='IOB2'" in msg
    assert main(["check", str(train), str(dev)]) == 2
    err = capsys.readouterr().err
    assert "--convert-to IOB2" in err and "convert_to" not in err


def test_convert_to_joins_splits_in_different_schemes(tmp_path):
    train, dev = write(tmp_path / "train.conll", IOB2), write(tmp_path / "dev.conll", BIOES)
    ds = load_corpus({"train": train, "validation": dev}, convert_to="IOB2")
    assert tag_names(ds["validation"]) == ["B-PER", "I-PER", "O"] and tag_names(ds["validation"], 1) == ["B-LOC"]
    assert dataset_scheme(ds["train"]) == dataset_scheme(ds["validation"]) == "IOB2"
    assert read_report(ds["validation"])["source_scheme"] == "BIOES"
    assert ds["train"].features["tags"].feature.names == ["O", "B-LOC", "B-PER", "I-PER"]


def test_an_iob1_file_is_recorded_as_iob1(tmp_path):
    ds = load_corpus(write(tmp_path / "train.conll", IOB1))["train"]
    assert dataset_scheme(ds) == "IOB1" and tag_names(ds) == ["I-PER", "I-PER", "O"]
    assert dataset_scheme(load_corpus(write(tmp_path / "t.conll", BIOES))["train"]) == "BIOES"


def test_a_file_valid_in_two_schemes_takes_the_scheme_of_the_others(tmp_path):
    # dev has no M- tag, so it is valid BIOES and BMES alike: it is read in train's BMES
    train = write(tmp_path / "train.bmes", "中 B-LOC\n华 M-LOC\n国 E-LOC\n")
    dev = write(tmp_path / "dev.bmes", "高 B-NAME\n勇 E-NAME\n\n京 S-LOC\n")
    ds = load_corpus({"train": train, "validation": dev}, format="conll")
    assert dataset_scheme(ds["train"]) == dataset_scheme(ds["validation"]) == "BMES"
    # and a file with no entity at all fits any scheme
    train, dev = write(tmp_path / "train.conll", IOB1), write(tmp_path / "dev.conll", "Nothing O\nhere O\n")
    ds = load_corpus({"train": train, "validation": dev})
    assert dataset_scheme(ds["validation"]) == "IOB1"


def test_dataset_scheme_is_none_without_tags(tmp_path):
    ds = load_corpus(write(tmp_path / "train.csv", "text,label\ngood,1\n"))["train"]
    assert dataset_scheme(ds) is None


def test_tags_invalid_in_the_declared_scheme_are_refused_with_the_line(tmp_path):
    path = write(tmp_path / "train.conll", IOB1)
    with pytest.raises(DataFormatError, match=r"train.conll:1: tag 'I-PER' at the start of a sentence is invalid "
                                              r"in IOB2 \(IOB1 starts spans with I-: if the file is IOB1, pass "
                                              r"scheme='IOB1'\); .*on_invalid='repair'"):
        load_corpus(path, scheme="IOB2")


@pytest.mark.filterwarnings("ignore:.*repaired 1 sentences")
def test_labels_after_conversion_and_repair_are_exactly_the_tags_of_the_rows(tmp_path):
    body = "a B-X\nb I-X\nc I-X\n\nd B-Y\n\ne B-Y\nf B-Y\n\ng O\nh I-Z\n"
    path = write(tmp_path / "train.conll", body)
    for target in ("IOB1", "IOB2", "BIOES", "BMES"):
        ds = load_corpus(path, scheme="IOB2", on_invalid="repair", convert_to=target)["train"]
        used = {t for i in range(ds.num_rows) for t in tag_names(ds, i)}
        assert set(ds.features["tags"].feature.names) == used, target
    with pytest.warns(UserWarning, match="repaired 1 sentences"):
        ds = load_corpus(path, scheme="IOB2", on_invalid="repair")["train"]
    assert ds.features["tags"].feature.names == ["O", "B-X", "I-X", "B-Y", "B-Z"]


# --- 12.12: predict on a file that is not UTF-8 ------------------------------------------------


def test_decode_lines_reports_the_line_of_a_bad_byte():
    import io

    lines = text.decode_lines(io.BytesIO(b"\xef\xbb\xbfgood\nalso good\r\nM\xfcller\n"), "in.txt")
    assert next(lines) == "good" and next(lines) == "also good\r"
    with pytest.raises(DataFormatError, match=r"^in.txt:3: byte 0xfc at column 2 is not UTF-8"):
        next(lines)


def test_predict_on_a_non_utf8_file_names_the_line(tmp_path, capsys):
    import torch

    from tests.helpers import tagging_dataset
    from textrnn.tasks.tagging import build_tagger

    torch.manual_seed(0)
    folder = build_tagger(tagging_dataset(), word_dim=4, hidden_size=4, char_dim=2,
                          char_filters=2).save_pretrained(tmp_path / "model")
    bad = write(tmp_path / "in.txt", b"John lives in Paris\nfine\nM\xfcller left\n")
    assert main(["predict", str(folder), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{bad}:3: byte 0xfc at column 2 is not UTF-8; re-encode the file as UTF-8")
    assert "position" not in err


# --- 13.4: formats told by content --------------------------------------------------------------


@pytest.mark.parametrize("name, body, fmt", [
    ("eng.train", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", "conll"),
    ("eng.testa", "EU\tB-ORG\nrejects\tO\n", "conll"),
    ("corpus.txt", "高 B-NAME\n勇 E-NAME\n\n中 S-LOC\n", "bmes"),
    ("corpus.txt", '{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n', "jsonl"),
    ("corpus.txt", "a good film\tpositive\nbad\tnegative\n", "tsv"),
    ("reviews", "text,label\n\"good, really\",1\nbad film,0\n", "csv"),
])
def test_format_is_told_by_content(tmp_path, name, body, fmt):
    scan = scan_file(write(tmp_path / name, body), text_column=0 if fmt == "tsv" else None,
                     label_column=1 if fmt == "tsv" else None)
    assert scan.format == fmt


def test_a_folder_with_conll2003_file_names(tmp_path):
    write(tmp_path / "eng.train", IOB2)
    write(tmp_path / "eng.testa", "Paris B-LOC\n")
    write(tmp_path / "eng.testb", "Rome B-LOC\n")
    assert list(load_corpus(tmp_path)) == ["train", "validation", "test"]


def test_an_unknown_format_asks_for_the_flag(tmp_path, capsys):
    path = write(tmp_path / "notes.txt", "just some words\nand a second sentence of them\n")
    with pytest.raises(DataFormatError, match="cannot tell the format"):
        load_corpus(path)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pass --format one of" in err and "format=" not in err


# --- 10.3: streaming ------------------------------------------------------------------------------


def test_reading_holds_one_block_not_the_file(tmp_path, monkeypatch):
    """Peak Python memory of the checking pass does not grow with the file (10x the lines)."""
    monkeypatch.setattr(text, "BLOCK", 1 << 15)
    sentence = "".join(f"Word{i} NN B-NP {'B-PER' if i % 7 == 0 else 'O'}\n" for i in range(12)) + "\n"
    peaks = []
    for copies in (500, 5000):
        path = write(tmp_path / f"x{copies}.conll", sentence * copies)
        tracemalloc.start()
        scan = scan_file(path)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert scan.counts["sentences"] == copies
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_scan_corpus_counts_without_arrow_and_refuses_unknown_options(tmp_path):
    from textrnn.data import scan_corpus

    scans = scan_corpus({"train": write(tmp_path / "eng.train", IOB2), "validation": write(tmp_path / "d.txt", BIOES)},
                        convert_to="BIOES")
    assert [(s.format, s.scheme, s.target, s.counts["entities"]) for s in scans.values()] == \
        [("conll", "IOB2", "BIOES", 2), ("conll", "BIOES", "BIOES", 2)]
    with pytest.raises(TypeError, match="text_colum"):
        scan_corpus(tmp_path / "eng.train", text_colum=1)
