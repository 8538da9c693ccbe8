"""ONNX export: the graph computes what the torch module computes, for every part a model can have;
exported folders run without torch; int8 really quantizes."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from textrnn import load_model, pipeline  # noqa: E402
from textrnn.config import TaggerConfig  # noqa: E402
from textrnn.export import export_model, to_onnx_model  # noqa: E402
from textrnn.models.tagger import BiRNNTagger  # noqa: E402
from textrnn.tasks.classification import build_classifier  # noqa: E402
from textrnn.tasks.tagging import SequenceTagger, build_tagger  # noqa: E402
from textrnn.vocab import CharVocab, WordVocab  # noqa: E402
from tests.helpers import (NER_LABELS, TINY_NER, TINY_SENTIMENT, ZH_LEXICON, ZH_SENTIMENT,  # noqa: E402
                           classification_dataset, multilabel_dataset, tagging_dataset, zh_dataset, zh_sentiment)

SENTENCES = [t for t, _ in TINY_NER] + [["Unseen", "Zürich", "words", "2-1", "here"], ["x"]]
TEXTS = [t for t, _ in TINY_SENTIMENT] + ["", "unseen words 2-1 here", "x"]
REPO = Path(__file__).resolve().parents[1]


def scaled(task, seed: int, scale: float = 3.0):
    """Random weights of a decisive size, like a trained model's (ties between tags are then rare)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in task.model.parameters():
            p.normal_(0, scale / max(p.shape[-1], 1) ** 0.5)
        for name, buffer in task.model.named_buffers():
            if buffer is not None and buffer.is_floating_point() and name.endswith(("frozen", "ngrams")):
                buffer.normal_(0, 1)
    task.model.eval()
    return task


def subword_tagger(seed: int = 0) -> SequenceTagger:
    """Frozen pretrained rows and a fastText n-gram table, as a tagger built from fastText vectors."""
    sentences = [t for t, _ in TINY_NER]
    words = WordVocab.build(sentences)
    config = TaggerConfig(vocab_size=len(words) + 5, labels=tuple(NER_LABELS), word_dim=8,
                          num_trainable_words=len(words), subword_buckets=64, num_chars=40, hidden_size=8,
                          char_dim=4, char_filters=4, num_layers=2, dropout=0.0)
    vocab = WordVocab.from_words(words.words[2:] + ["frozen1", "frozen2", "frozen3", "zürich", "here"])
    return scaled(SequenceTagger(BiRNNTagger(config), vocab, CharVocab.build(sentences)), seed)


TAGGERS = {
    "lstm-cnn-crf": lambda: scaled(build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4,
                                                char_filters=4), 1),
    "gru-charlstm-softmax": lambda: scaled(build_tagger(tagging_dataset(), rnn="gru", char_encoder="lstm",
                                                        use_crf=False, word_dim=8, hidden_size=8, char_dim=4,
                                                        char_filters=4), 2),
    "bigrams-2layers-nochars": lambda: scaled(build_tagger(tagging_dataset(), bigrams=True, char_encoder="none",
                                                           num_layers=2, word_dim=8, hidden_size=8), 3),
    "subwords-frozen": subword_tagger,
}


@pytest.mark.parametrize("kind", sorted(TAGGERS))
def test_tagger_graph_matches_torch(kind):
    tagger = TAGGERS[kind]()
    onnx_tagger = to_onnx_model(tagger)
    arrays = tagger.arrays([tagger.encode(s) for s in SENTENCES])
    mask = arrays["mask"]
    with tagger.inference():
        expected = tagger.emission_scores(arrays)
    assert np.abs(onnx_tagger.emission_scores(arrays)[mask] - expected[mask]).max() < 1e-5
    torch_out = tagger.predict_entities(SENTENCES, batch_size=3)
    onnx_out = onnx_tagger.predict_entities(SENTENCES, batch_size=3)
    assert [t for t, _, _ in onnx_out] == [t for t, _, _ in torch_out]
    for (_, t_scores, t_spans), (_, o_scores, o_spans) in zip(torch_out, onnx_out):
        assert o_scores == pytest.approx(t_scores, abs=1e-5)
        assert [s[:3] for s in o_spans] == [s[:3] for s in t_spans]
        assert [s[3] for s in o_spans] == pytest.approx([s[3] for s in t_spans], abs=1e-5)


def test_subword_rows_reach_the_graph():
    """An unknown word's n-gram mean changes its emissions, in torch and in the graph alike."""
    tagger = subword_tagger()
    onnx_tagger = to_onnx_model(tagger)
    item = tagger.encode(["Zqx", "Paris"])
    assert item["oov"] and item["oov"][0][0] == 0
    plain = dict(item, oov=[])
    for model in (tagger, onnx_tagger):
        with model.inference():
            with_rows = model.emission_scores(model.arrays([item]))
            without = model.emission_scores(model.arrays([plain]))
        assert np.abs(with_rows[0, 0] - without[0, 0]).max() > 1e-3


CLASSIFIERS = {
    **{f"pooling-{kind}": (lambda kind=kind: build_classifier(classification_dataset(), pooling=kind, word_dim=8,
                                                              hidden_size=6)) for kind in
       ("max", "mean", "last", "attention")},
    "gru-bigrams-2layers": lambda: build_classifier(classification_dataset(), rnn="gru", bigrams=True, num_layers=2,
                                                    word_dim=8, hidden_size=6),
    "multi-label": lambda: build_classifier(multilabel_dataset([("a b", ["x"]), ("b c", ["x", "y"]), ("c", [])],
                                                               ["x", "y"]), word_dim=8, hidden_size=6),
}


@pytest.mark.parametrize("kind", sorted(CLASSIFIERS))
def test_classifier_graph_matches_torch(kind):
    clf = scaled(CLASSIFIERS[kind](), 4)
    onnx_clf = to_onnx_model(clf)
    expected = clf.predict_proba(TEXTS, batch_size=4).numpy()
    got = onnx_clf.predict_proba(TEXTS, batch_size=4)
    assert np.abs(got - expected).max() < 1e-5
    ranked, expected_ranked = onnx_clf.predict(TEXTS, top_k=None), clf.predict(TEXTS, top_k=None)
    assert [[d["label"] for d in r] for r in ranked] == [[d["label"] for d in r] for r in expected_ranked]


def test_exported_folder_round_trip(tmp_path):
    tagger = TAGGERS["lstm-cnn-crf"]()
    source = tagger.save_pretrained(tmp_path / "torch")
    out = export_model(source, tmp_path / "onnx")
    files = {p.name for p in out.iterdir()}
    assert files >= {"model.onnx", "config.json", "tokenizer.json", "char_vocab.json", "crf.safetensors"}
    assert "model.safetensors" not in files
    config = json.loads((out / "config.json").read_text())
    assert config["export"]["format"] == "onnx" and config["export"]["quantize"] is None
    texts = ["George Washington went to Washington .", "Mary met John Smith in New York City ."]
    expected = pipeline("ner", model=source)(texts, aggregation="none")
    got = pipeline("ner", model=out)(texts, aggregation="none")
    assert [[(e["entity"], e["start"]) for e in r] for r in got] == \
        [[(e["entity"], e["start"]) for e in r] for r in expected]
    assert [e["score"] for r in got for e in r] == pytest.approx([e["score"] for r in expected for e in r], abs=1e-5)
    with pytest.raises(ValueError, match="runs on backend='onnx' only"):
        load_model(out, backend="torch")
    export_model(tagger, out)  # replaces the folder whole
    assert {p.name for p in out.iterdir()} == files


def test_int8_quantizes_the_rnn_and_stays_close(tmp_path):
    import onnx

    clf = scaled(CLASSIFIERS["pooling-max"](), 5, scale=1.0)
    out = export_model(clf, tmp_path / "int8", quantize="int8")
    ops = {node.op_type for node in onnx.load(out / "model.onnx").graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    assert json.loads((out / "config.json").read_text())["export"]["quantize"] == "int8"
    int8 = load_model(out)
    assert np.abs(int8.predict_proba(TEXTS) - clf.predict_proba(TEXTS).numpy()).max() < 0.05
    assert pipeline("sentiment-analysis", model=clf, quantize="int8").model.export_info["quantize"] == "int8"
    with pytest.raises(ValueError, match="runs on backend='onnx'"):
        pipeline("sentiment-analysis", model=clf, backend="torch", quantize="int8")


def test_bf16_is_refused_on_onnx():
    with pytest.raises(ValueError, match="not available with the onnx backend"):
        pipeline("ner", model=TAGGERS["lstm-cnn-crf"](), backend="onnx", precision="bf16")


LEAN = """
import sys
from textrnn import pipeline
pipe = pipeline({task!r}, model={folder!r})
print(pipe(["George Washington went to Washington .", ""]))
heavy = ["torch", "datasets", "gensim", "sklearn", "pandas", "pyarrow", "accelerate", "onnx"]
print("LOADED", [m for m in heavy if m in sys.modules])
"""


def imported_after_predict(task: str, folder: Path):
    """The heavy packages a fresh interpreter has imported after loading ``folder`` and predicting."""
    out = subprocess.run([sys.executable, "-c", LEAN.format(task=task, folder=str(folder))], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.split("LOADED", 1)[1].strip().replace("'", '"'))


def test_loading_and_predicting_imports_no_training_stack(tmp_path):
    tagger = TAGGERS["lstm-cnn-crf"]()
    torch_folder = tagger.save_pretrained(tmp_path / "torch")
    assert imported_after_predict("ner", torch_folder) == ["torch"]
    onnx_folder = export_model(tagger, tmp_path / "onnx")
    assert imported_after_predict("ner", onnx_folder) == []
    clf_folder = export_model(scaled(CLASSIFIERS["pooling-max"](), 6), tmp_path / "clf")
    assert imported_after_predict("sentiment-analysis", clf_folder) == []


def test_cli_exports_and_predicts_like_torch(tmp_path, capsys):
    from textrnn.cli import main

    source = TAGGERS["lstm-cnn-crf"]().save_pretrained(tmp_path / "torch")
    texts = tmp_path / "texts.txt"
    texts.write_text("George Washington went to Washington .\n\nMary met John Smith in New York City .\n",
                     encoding="utf-8")
    assert main(["export", str(source), "--output", str(tmp_path / "onnx"), "--quantize", "int8"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["quantize"] == "int8"
    assert main(["export", str(source), "--output", str(tmp_path / "onnx32")]) == 0
    capsys.readouterr()

    def predicted(folder, *options):
        assert main(["predict", folder, str(texts), *options]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        return [[(e["entity_group"], e["start"], e["end"]) for e in r["prediction"]] for r in rows]

    expected = predicted(str(source))
    assert len(expected) == 3
    assert predicted(str(tmp_path / "onnx32")) == expected
    assert predicted(str(source), "--backend", "onnx") == expected
    assert main(["predict", str(source), "--backend", "onnx", str(texts)]) == 0  # the file after the options
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["predict", str(tmp_path / "onnx32"), str(texts), "--device", "cuda"]) == 2
    assert "runs on the CPU" in capsys.readouterr().err


ZH_TEXTS = [t for t, _ in ZH_SENTIMENT] + ["张三在中国人民银行工作", "上海很好", "没有词", ""]


@pytest.mark.parametrize("task", ["ner", "sentiment-analysis"])
def test_lexicon_models_export_and_match_torch(task, tmp_path):
    """The SoftLexicon sets in the graph: the same emissions or probabilities as torch, in memory and
    from an exported folder that carries lexicon.json."""
    lexicon, extra = tmp_path / "lexicon.txt", tmp_path / "unlabelled.txt"
    lexicon.write_text(ZH_LEXICON + "上海 10\n", encoding="utf-8")
    extra.write_text("上海很好\n", encoding="utf-8")  # 上海 is matched only here: its gensim vector stays frozen
    settings = dict(bigrams=True, lexicon=str(lexicon), lexicon_dim=6, embeddings_text=str(extra), word_dim=8)
    if task == "ner":
        model = scaled(build_tagger(zh_dataset(), char_encoder="none", hidden_size=8, **settings), 7)
        items = [model.encode(list(t)) for t in ZH_TEXTS[:-1]]
    else:
        model = scaled(build_classifier(zh_sentiment(), hidden_size=6, **settings), 8)
        items = [model.encode(t) for t in ZH_TEXTS]
    assert model.model.lexicon.vectors.frozen is not None
    arrays = model.arrays(items)
    assert (arrays["lexicon"] % 4 == 1).any() and (arrays["lexicon"] % 4 == 3).any()  # M and S sets are filled
    folder = export_model(model, tmp_path / "onnx")
    assert (folder / "lexicon.json").exists()
    for onnx_model in (to_onnx_model(model), load_model(folder)):
        assert onnx_model.lexicon.words == model.lexicon.words
        if task == "ner":
            with model.inference():
                expected = model.emission_scores(arrays)
            got = onnx_model.emission_scores(arrays)
            assert np.abs(got - expected)[arrays["mask"]].max() < 1e-5
            sentences = [list(t) for t in ZH_TEXTS[:-1]]
            assert onnx_model.predict(sentences) == model.predict(sentences)
        else:
            expected = model.predict_proba(ZH_TEXTS, batch_size=3).numpy()
            assert np.abs(onnx_model.predict_proba(ZH_TEXTS, batch_size=3) - expected).max() < 1e-5
    assert imported_after_predict(task, folder) == []