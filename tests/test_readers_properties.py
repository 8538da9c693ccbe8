"""Property-based tests: whatever bytes or text a file holds, every reader either reads it or
raises textrnn's own error (a TextrnnError naming the file); and the pre-tokenizer's offsets are
exact for any text. Examples are few and generated fresh each run; a failure prints the input."""
import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from textrnn.data import read_file
from textrnn.errors import TextrnnError
from textrnn.vocab import pre_tokenize

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = ["conll", "bmes", "csv", "tsv", "jsonl", None]
NAMES = {"conll": "x.conll", "bmes": "x.bmes", "csv": "x.csv", "tsv": "x.tsv", "jsonl": "x.jsonl", None: "x.txt"}


def read(data: bytes, fmt, **options):
    """read_file on a temporary file holding ``data``: a result, or a TextrnnError that names the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, NAMES[fmt])
        with open(path, "wb") as f:
            f.write(data)
        try:
            return read_file(path, fmt, **options)
        except TextrnnError as err:
            assert path in str(err) or "column" in str(err), str(err)
            assert "\n" not in str(err), str(err)  # one line, for editors and the command line
            return None


# Text built from the pieces the parsers care about, so examples reach past the first check.
PIECES = st.sampled_from(["O", "B-PER", "I-PER", "E-PER", "S-LOC", "M-LOC", "B-", "X-Y", "-DOCSTART-", " ", "\t",
                          "\n", "\n\n", "\r\n", ",", '"', '""', "\\", "{", "}", "[", "]", ":", '"text"', '"label"',
                          '"tokens"', '"tags"', "1", "0", "null", "true", "é", "中", "\ufeff", "\x00", "\u2028",
                          "word", "text,label\n"])
STRUCTURED = st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=40).map("".join)


@pytest.mark.parametrize("fmt", FORMATS)
@FAST
@given(data=st.binary(max_size=300))
def test_any_bytes_read_or_raise_textrnn_errors(fmt, data):
    read(data, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@FAST
@given(text=STRUCTURED)
def test_any_text_reads_or_raises_textrnn_errors(fmt, text):
    result = read(text.encode("utf-8"), fmt)
    if result is not None and result.task == "tagging":
        assert len(result.tokens) == result.counts["sentences"] == len(result.tags)
        assert all(len(a) == len(b) > 0 for a, b in zip(result.tokens, result.tags))


@FAST
@given(text=STRUCTURED, options=st.fixed_dictionaries({}, optional={
    "text_column": st.sampled_from([0, 1, -1, "0", "text", "label", "x"]),
    "label_column": st.sampled_from([0, 1, 2, "1", "label", "y"]),
    "header": st.booleans(), "multi_label": st.booleans(), "multiline": st.booleans(),
    "label_sep": st.sampled_from([",", "|"]), "label_names": st.sampled_from([["0", "1"], {"1": "pos"}]),
}), fmt=st.sampled_from(["csv", "tsv", "jsonl"]))
def test_table_options_never_crash(text, options, fmt):
    read(text.encode("utf-8"), fmt, **options)


@FAST
@given(text=STRUCTURED, options=st.fixed_dictionaries({}, optional={
    "token_column": st.sampled_from([0, 1, -1, 2]), "tag_column": st.sampled_from([0, 1, -1, -2]),
    "scheme": st.sampled_from(["IOB1", "IOB2", "BIOES", "BMES"]),
    "convert_to": st.sampled_from(["IOB1", "IOB2", "BIOES", "BMES"]), "on_invalid": st.sampled_from(["error", "repair"]),
}), fmt=st.sampled_from(["conll", "jsonl"]))
def test_tagging_options_never_crash(text, options, fmt):
    read(text.encode("utf-8"), fmt, **options)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8)
OBJECTS = st.one_of(
    st.fixed_dictionaries({"text": st.text(min_size=1, max_size=5) | JSON_VALUES, "label": JSON_VALUES}),
    st.fixed_dictionaries({"tokens": st.lists(st.text(min_size=1, max_size=3) | JSON_VALUES, max_size=3),
                           "tags": st.lists(st.sampled_from(["O", "B-X", "I-X"]) | JSON_VALUES, max_size=3)}),
    st.dictionaries(st.sampled_from(["text", "label", "tokens", "tags", "x"]), JSON_VALUES, max_size=4))


@settings(max_examples=200, deadline=None)
@given(objects=st.lists(OBJECTS, min_size=1, max_size=4), multi_label=st.booleans())
def test_any_json_objects_read_or_raise_textrnn_errors(objects, multi_label):
    data = "".join(json.dumps(obj) + "\n" for obj in objects).encode("utf-8")
    read(data, "jsonl", multi_label=multi_label)


TAGS = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC"])
SENTENCE = st.lists(st.tuples(st.text(alphabet=st.characters(blacklist_categories=["Z", "C"]), min_size=1,
                                      max_size=5), TAGS), min_size=1, max_size=6)


@FAST
@given(sentences=st.lists(SENTENCE, min_size=1, max_size=5), convert_to=st.sampled_from(["IOB1", "IOB2", "BIOES"]))
def test_conll_and_jsonl_read_the_same_sentences(sentences, convert_to):
    """One corpus written as CoNLL and as JSON lines: the same rows, or the same kind of error."""
    conll = "\n".join("".join(f"{w} {t}\n" for w, t in s) for s in sentences)
    jsonl = "".join(json.dumps({"tokens": [w for w, _ in s], "tags": [t for _, t in s]}) + "\n" for s in sentences)
    a = read(conll.encode("utf-8"), "conll", convert_to=convert_to, on_invalid="repair")
    b = read(jsonl.encode("utf-8"), "jsonl", convert_to=convert_to, on_invalid="repair")
    assume(a is not None)  # e.g. tags of two schemes in one file
    assert b is not None and (a.tokens, a.tags, a.scheme) == (b.tokens, b.tags, b.scheme)
    assert a.tokens == [[w for w, _ in s] for s in sentences]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_pre_tokenizer_offsets_are_exact(text):
    """The pre-tokenizer does not normalise: each token is exactly its slice of the text, tokens
    come in order without overlap, and only whitespace is left out."""
    pieces = pre_tokenize(text)
    end = 0
    for token, (a, b) in pieces:
        assert text[a:b] == token and token
        assert a >= end and text[end:a].strip() == ""
        end = b
    assert text[end:].strip() == ""
