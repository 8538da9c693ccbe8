"""The textrnn command, run in-process on tiny files the tests write."""
import json

import pytest

from textrnn.cli import build_parser, main
from tests.helpers import TINY_NER, TINY_SENTIMENT, known_entities, needs_data, train_fixed_tagger


def write_conll(path, rows):
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(*r)) + "\n" for r in rows), encoding="utf-8")
    return path


def last_json(capsys):
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def test_every_command_has_useful_help(capsys):
    for argv in (["--help"], ["train", "ner", "--help"], ["train", "classify", "--help"], ["evaluate", "--help"],
                 ["predict", "--help"], ["embeddings", "train", "--help"], ["push", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(argv)
        assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--embeddings" in text and "--no-crf" in text and "--pooling" in text and "--method" in text


def test_train_evaluate_predict_ner(tmp_path, capsys):
    train = write_conll(tmp_path / "train.conll", TINY_NER * 3)
    out = tmp_path / "model"
    args = ["train", "ner", "--train", str(train), "--dev", str(train), "--test", str(train),
            "--output-dir", str(out), "--max-epochs", "3", "--hidden-size", "8", "--word-dim", "8",
            "--char-filters", "4", "--char-dim", "4", "--threads", "1"]
    assert main(args) == 0
    summary = last_json(capsys)
    assert {"dev_f1", "test_f1", "train_seconds"} <= set(summary)
    assert (out / "config.json").exists() and not (out / "checkpoint").exists()

    assert main(["evaluate", str(out), "--test", str(train)]) == 0
    metrics = last_json(capsys)
    assert metrics["f1"] == pytest.approx(summary["test_f1"], abs=0.01) and metrics["examples"] == 18

    text = tmp_path / "in.txt"
    text.write_text("John Smith lives in Paris .\n\nEU rejects German call .\n", encoding="utf-8")
    assert main(["predict", str(out), str(text)]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["John Smith lives in Paris .", "", "EU rejects German call ."]
    assert rows[1]["prediction"] == []
    for row in rows:  # an untrained model: only the form of the output can be checked here
        assert all(set(e) == {"entity_group", "word", "score", "start", "end"} for e in row["prediction"])


def test_predict_command_gives_known_entities_at_exact_offsets(tmp_path, capsys):
    folder = train_fixed_tagger().save_pretrained(tmp_path / "fixed")
    lines = [known_entities("John Smith lives in Paris .".split()),
             known_entities("张 三 去 了 北 京 。".split(), sep=""),
             known_entities("Mary met John Smith in Berlin .".split() * 4 + ["w"] * 300
                            + "Reuters reported from Paris .".split())]
    (tmp_path / "in.txt").write_text("\n".join(text for text, _, _ in lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(folder), str(tmp_path / "in.txt")]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == [text for text, _, _ in lines]
    for row, (_, entities, _) in zip(rows, lines):
        assert [(e["entity_group"], e["start"], e["end"], e["word"]) for e in row["prediction"]] == entities
    assert len(rows[2]["prediction"]) == 4 * 3 + 2


def test_train_classifier_holds_out_dev_when_none_given(tmp_path, capsys):
    csv = tmp_path / "train.csv"
    csv.write_text("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in TINY_SENTIMENT * 3), encoding="utf-8")
    out = tmp_path / "clf"
    assert main(["train", "classify", "--train", str(csv), "--output-dir", str(out), "--max-epochs", "2",
                 "--hidden-size", "8", "--word-dim", "8", "--threads", "1"]) == 0
    assert "dev_accuracy" in last_json(capsys)
    assert main(["evaluate", str(out), "--test", str(csv)]) == 0
    assert {"accuracy", "macro_f1"} <= set(last_json(capsys))


def test_embeddings_train_on_a_text_file(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20, encoding="utf-8")
    out = tmp_path / "vectors.txt"
    assert main(["embeddings", "train", str(text), "--output", str(out), "--dim", "8", "--epochs", "2"]) == 0
    assert last_json(capsys)["words"] == 7
    from textrnn.embeddings import load_vectors

    vectors = load_vectors(out)
    assert vectors.matrix.shape == (7, 8) and "cat" in vectors.words


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.conll"
    bad.write_text("John B-PER\nSmith\n", encoding="utf-8")
    assert main(["train", "ner", "--train", str(bad), "--output-dir", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "bad.conll:2" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path / "missing"), "--test", str(bad)]) == 2
    assert "no such model folder" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert main(["embeddings", "train", str(empty), "--output", str(tmp_path / "v.txt")]) == 2


@needs_data
def test_predict_command_matches_pipeline_on_1000_conll_sentences(tmp_path, capsys):
    """Any weights will do for agreement: a small untrained tagger with CoNLL-2003's vocabulary."""
    import torch

    from textrnn import load_corpus, pipeline
    from textrnn.tasks.tagging import build_tagger

    corpus = load_corpus("conll2003", splits=["train", "test"])
    torch.manual_seed(0)
    tagger = build_tagger(corpus["train"].select(range(2000)), word_dim=16, hidden_size=16, char_dim=8,
                          char_filters=8)
    folder = tagger.save_pretrained(tmp_path / "model")
    texts = [" ".join(tokens) for tokens in corpus["test"]["tokens"][:1000]]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(folder), str(tmp_path / "in.txt"), "--batch-size", "64"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    expected = pipeline("ner", model=tagger)(texts, batch_size=256)
    assert [r["text"] for r in rows] == texts
    got = [[(e["entity_group"], e["start"], e["end"]) for e in r["prediction"]] for r in rows]
    want = [[(e["entity_group"], e["start"], e["end"]) for e in es] for es in expected]
    assert got == want and sum(map(len, want)) > 0
    for r, es in zip(rows, expected):
        assert [e["score"] for e in r["prediction"]] == pytest.approx([e["score"] for e in es], abs=1e-5)
