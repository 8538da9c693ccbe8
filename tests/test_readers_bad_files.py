"""Each file in tests/bad_files/ has one defect. Through the command line (`textrnn check`) each
must end with exit code 2 and one line on stderr that says file:line: what is wrong, in words
that name CLI flags, never Python keyword arguments."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from textrnn.cli import main

BAD = Path(__file__).parent / "bad_files"
HEADERLESS = ["--text-column", "0", "--label-column", "1", "--header", "false"]
# file: (extra flags, line or None, what the message says)
EXPECTED = {
    "wrong_column_count.conll": ([], 3, r"expected 3 columns \(as on line 1\), found 2"),
    "too_few_columns.conll": ([], 2, "expected at least 2 columns, found 1"),
    "invalid_sequence.conll": ([], 5, "tag 'O' after 'B-LOC' is invalid in BIOES; .*pass --on-invalid repair"),
    "malformed_tag.conll": ([], 2, "malformed tag 'X-PER'"),
    "mixed_prefixes.conll": ([], 3, "malformed tag 'I-PER'.*mix schemes"),
    "unfinished_entity.bmes": ([], 2, "tag 'M-LOC' may not end a sentence in BMES"),
    "bad_utf8.conll": ([], 2, "byte 0xfc at column 2 is not UTF-8"),
    "empty.conll": ([], None, "the file is empty"),
    "whitespace_only.conll": ([], None, "the file holds only whitespace"),
    "docstart_only.conll": ([], None, "no sentences found"),
    "unbalanced_quote.csv": ([], 3, "followed by more text instead of the delimiter: an unbalanced quote"),
    "unclosed_quote.csv": ([], 4, "never closes"),
    "merged_rows.csv": ([], 3, r"each read as a record of their own.*pass --multiline"),
    "missing_label.csv": ([], 3, "missing label: column 'label' is empty"),
    "missing_column.csv": ([], 1, r"no column named 'text'.*--text-column/--label-column"),
    "empty_text.tsv": (HEADERLESS, 2, "empty text in column '0'"),
    "too_few_fields.tsv": (HEADERLESS, 2, "expected at least 2 columns, found 1"),
    "not_an_object.jsonl": ([], 2, "expected a JSON object, found an array"),
    "invalid_json.jsonl": ([], 2, "invalid JSON"),
    "tags_and_tokens_differ.jsonl": ([], 1, "expected as many tags as tokens"),
    "label_list.jsonl": ([], 1, r"found an array \(pass --multi-label for lists\)"),
    "missing_key.jsonl": ([], 2, "no key 'text' in this object"),
    "unknown_format.txt": ([], None, "cannot tell the format.*pass --format one of"),
}


def test_every_bad_file_has_an_expectation():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_gives_one_file_line_message(name, capsys):
    flags, line, fragment = EXPECTED[name]
    path = BAD / name
    assert main(["check", str(path), *flags]) == 2
    captured = capsys.readouterr()
    lines = [x for x in captured.err.splitlines() if x.strip()]
    assert len(lines) == 1, captured.err
    where = f"{path}:{line}: " if line else f"{path}: "
    assert lines[0].startswith(f"textrnn check: error: {where}"), lines[0]
    assert re.search(fragment, lines[0]), lines[0]
    assert not re.search(r"\b\w+=", lines[0]), lines[0]  # flags, not keyword arguments
    assert captured.out == ""


def test_the_real_command_exits_2():
    path = BAD / "unbalanced_quote.csv"
    out = subprocess.run([sys.executable, "-m", "textrnn.cli", "check", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"textrnn check: error: {path}:3: a quoted field opened on this line and closed on line 4 is followed by more "
        "text instead of the delimiter: an unbalanced quote? (a quote inside a quoted field is written twice: \"\")"]
