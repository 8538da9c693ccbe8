"""The lexicon (SoftLexicon B/M/E/S sets): matching and segmentation against brute force, files,
and the tagger contract with a lexicon (overfits, batch = one at a time, save/load, no gensim)."""
import importlib
import itertools
import json
import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from textrnn.config import TaggerConfig, TrainingConfig
from textrnn.errors import ConfigError, DataFormatError
from textrnn.lexicon import Lexicon, build_lexicon_features, maximal_counts, read_lexicon_file, segment
from textrnn.modules.lexicon import LexiconEmbedding
from textrnn.tasks.tagging import SequenceTagger, build_tagger, train_tagger
from tests.helpers import ZH_LEXICON, ZH_NER, ZH_SENTIMENT, tagging_dataset, zh_dataset, zh_sentiment

def brute_force_matches(tokens, words):
    """Every (first, end, word) with tokens[first:end] spelling a lexicon word."""
    return {(i, j, "".join(tokens[i:j]).lower()) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)
            if "".join(tokens[i:j]).lower() in words}


def test_matching_equals_brute_force_over_all_substrings():
    rng = random.Random(0)
    alphabet = ["a", "b", "c", "ab", "B"]  # multi-character tokens and case too
    for _ in range(300):
        words = sorted({"".join(rng.choice("abc") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 8))})
        lexicon = Lexicon(words)
        tokens = [rng.choice(alphabet) for _ in range(rng.randint(0, 9))]
        found = {(i, j, lexicon.words[e - 1]) for i, j, e in lexicon.matches(tokens)}
        assert found == brute_force_matches(tokens, set(words))


def test_bmes_sets_by_hand_and_by_definition():
    lexicon = Lexicon(["中国", "中国人", "国人", "人民", "人", "民"])
    sets = lexicon.sets(list("中国人民"))
    assert sets[0] == {"B": {"中国", "中国人"}, "M": set(), "E": set(), "S": set()}
    assert sets[1] == {"B": {"国人"}, "M": {"中国人"}, "E": {"中国"}, "S": set()}
    assert sets[2] == {"B": {"人民"}, "M": set(), "E": {"中国人", "国人"}, "S": {"人"}}
    assert sets[3] == {"B": set(), "M": set(), "E": {"人民"}, "S": {"民"}}
    rng = random.Random(1)
    for _ in range(100):  # the sets follow from the matches: begin, strictly inside, end, alone
        words = sorted({"".join(rng.choice("xyz") for _ in range(rng.randint(1, 4))) for _ in range(6)})
        lexicon = Lexicon(words)
        tokens = [rng.choice("xyz") for _ in range(rng.randint(1, 8))]
        expected = [{k: set() for k in "BMES"} for _ in tokens]
        for i, j, word in brute_force_matches(tokens, set(words)):
            if j - i == 1:
                expected[i]["S"].add(word)
            else:
                expected[i]["B"].add(word)
                expected[j - 1]["E"].add(word)
                for k in range(i + 1, j - 1):
                    expected[k]["M"].add(word)
        assert lexicon.sets(tokens) == expected


def test_segment_is_the_most_probable_split():
    rng = random.Random(2)
    for _ in range(100):
        words = sorted({"".join(rng.choice("pq") for _ in range(rng.randint(1, 3))) for _ in range(5)})
        lexicon = Lexicon(words)
        freq = [0.0] + [float(rng.randint(1, 50)) for _ in words]
        tokens = [rng.choice("pq") for _ in range(rng.randint(1, 7))]
        total = math.log(sum(freq))
        logp = {w: math.log(f) - total for w, f in zip(words, freq[1:])}

        def score(parts):
            return sum(logp.get(p, -total) if len(p) == 1 or p in logp else -math.inf for p in parts)

        best = max(score(["".join(tokens[a:b]) for a, b in zip((0,) + cut, cut + (len(tokens),))])
                   for r in range(len(tokens)) for cut in itertools.combinations(range(1, len(tokens)), r))
        assert score(segment(tokens, lexicon, freq)) == pytest.approx(best)
        assert "".join(segment(tokens, lexicon, freq)) == "".join(tokens)


def test_maximal_counts_skip_matches_inside_longer_ones():
    lexicon = Lexicon(["北京", "北京大学", "大学", "京"])
    counts = maximal_counts([list("北京大学"), list("北京")], lexicon)
    entry = {w: i for i, w in enumerate(lexicon.words, 1)}
    assert counts == {entry["北京大学"]: 1, entry["北京"]: 1}


def test_lexicon_file_formats_and_errors(tmp_path):
    path = tmp_path / "lex.txt"
    path.write_text("# a comment\nAT&T 3 nz\nat&t 2\n北京\n\n大学 5.5\n", encoding="utf-8-sig")  # a BOM too
    assert read_lexicon_file(path) == {"at&t": 5.0, "北京": 1.0, "大学": 5.5}
    path.write_text("北京 10\n大学 lots\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"lex.txt:2: expected 'WORD \[FREQUENCY\]'"):
        read_lexicon_file(path)
    path.write_text("北京 -1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"lex.txt:1: expected a frequency of 0 or more"):
        read_lexicon_file(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataFormatError, match="expected UTF-8"):
        read_lexicon_file(path)
    with pytest.raises(DataFormatError, match="no such lexicon file"):
        build_lexicon_features(str(tmp_path / "missing.txt"), [])
    with pytest.raises(ConfigError, match="weighting"):
        build_lexicon_features(str(path), [], weighting="tfidf")


def test_lexicon_embedding_weights_sets_by_frequency():
    weights = torch.tensor([0.0, 1.0, 3.0])  # entry 0 pads
    rows = torch.tensor([0, 3, 4], dtype=torch.int32)
    emb = LexiconEmbedding(3, 5, 2, weights=weights, rows=rows, init=torch.arange(10.0).view(5, 2))
    codes = torch.tensor([[[4 * 1 + 0, 4 * 2 + 0, 4 * 2 + 3], [0, 0, 0]]])  # token 0: B {1, 2}, S {2}
    out = emb(codes).view(1, 2, 4, 2)
    v1, v2, none = torch.tensor([6.0, 7.0]), torch.tensor([8.0, 9.0]), torch.tensor([2.0, 3.0])
    z = 1.0 + 3.0 + 3.0  # all four sets of the token
    assert torch.allclose(out[0, 0, 0], 4 / z * (1 * v1 + 3 * v2))
    assert torch.allclose(out[0, 0, 3], 4 / z * 3 * v2)
    assert torch.equal(out[0, 0, 1], none) and torch.equal(out[0, 0, 2], none)
    assert torch.equal(out[0, 1], none.expand(4, 2))  # no words at all: four empty sets


@pytest.fixture
def lexicon_file(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text(ZH_LEXICON, encoding="utf-8")
    return str(path)


def make_tagger(lexicon_file, **overrides):
    settings = dict(word_dim=8, hidden_size=16, char_encoder="none", bigrams=True, dropout=0.0,
                    lexicon=lexicon_file, lexicon_dim=6)
    settings.update(overrides)
    return build_tagger(zh_dataset(), **settings)


@pytest.mark.parametrize("weighting,vectors", [("frequency", "word2vec"), ("corpus", "random"), ("uniform", "random")])
def test_overfits_tiny_corpus_with_a_lexicon(lexicon_file, weighting, vectors):
    tagger = make_tagger(lexicon_file, lexicon_weighting=weighting, lexicon_vectors=vectors, seed=0)
    assert tagger.config.lexicon_size == 13 and tagger.config.lexicon_rows > 3
    data = zh_dataset()
    config = TrainingConfig(max_epochs=60, batch_size=2, optimizer="adam", lr=0.02, seed=0)
    result = train_tagger(tagger, data, data, config)
    assert result.best_score == 100.0
    assert tagger.predict([t for t, _ in ZH_NER]) == [g for _, g in ZH_NER]


def test_lexicon_batch_equals_one_at_a_time(lexicon_file):
    tagger = make_tagger(lexicon_file, seed=1)
    tagger.model.eval()
    sentences = [t for t, _ in ZH_NER] + [list("没有词")]
    together = tagger.predict(sentences, batch_size=64, with_scores=True)
    alone = [tagger.predict([s], batch_size=1, with_scores=True) for s in sentences]
    assert together[0] == [a[0][0] for a in alone]
    for batch_scores, (_, single) in zip(together[1], alone):
        assert batch_scores == pytest.approx(single[0], abs=1e-5)


def test_lexicon_save_load_identical_outputs_without_gensim(lexicon_file, tmp_path):
    tagger = make_tagger(lexicon_file, seed=2)
    tagger.model.eval()
    folder = tagger.save_pretrained(tmp_path / "model")
    assert (folder / "lexicon.json").exists()
    loaded = SequenceTagger.from_pretrained(folder)
    batch = tagger.collate([tagger.encode(t) for t, _ in ZH_NER])
    with torch.no_grad():
        assert torch.equal(tagger.model.emissions(batch), loaded.model.emissions(batch))
    expected = tagger.predict([list("赵六在人民银行")], with_scores=True)
    script = textwrap.dedent(f"""
        import json, sys
        from textrnn.tasks.tagging import SequenceTagger
        tagger = SequenceTagger.from_pretrained({str(folder)!r})
        tags, scores = tagger.predict([list("赵六在人民银行")], with_scores=True)
        print(json.dumps({{"tags": tags, "scores": scores, "gensim": "gensim" in sys.modules,
                          "jieba": "jieba" in sys.modules}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["gensim"] is False and result["jieba"] is False
    assert result["tags"] == expected[0]
    assert result["scores"][0] == pytest.approx(expected[1][0], abs=1e-6)


def test_pipeline_on_raw_chinese_text_with_a_lexicon(lexicon_file):
    """Raw text in: pre-tokenized per character, matched against the lexicon, spans with offsets out."""
    from textrnn import pipeline

    tagger = make_tagger(lexicon_file, seed=0)
    data = zh_dataset()
    train_tagger(tagger, data, data, TrainingConfig(max_epochs=60, batch_size=2, optimizer="adam", lr=0.02, seed=0))
    text = "张三在 北京大学读书"  # a space inside: offsets must still point at the characters
    found = [(e["entity_group"], e["word"], text[e["start"]:e["end"]]) for e in pipeline("ner", model=tagger)(text)]
    assert found == [("NAME", "张三", "张三"), ("ORG", "北京大学", "北京大学")]


def test_a_lexicon_that_does_not_match_its_config_is_refused(lexicon_file, tmp_path):
    folder = make_tagger(lexicon_file).save_pretrained(tmp_path / "model")
    data = json.loads((folder / "lexicon.json").read_text(encoding="utf-8"))
    data["lexicon"] = data["lexicon"][:-1]
    (folder / "lexicon.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataFormatError, match="lexicon.json: holds 11 words but config.json says lexicon_size 13"):
        SequenceTagger.from_pretrained(folder)


def test_configs_without_lexicon_fields_still_load(tmp_path):
    """Models saved before the lexicon existed: their config.json lacks the lexicon_* keys."""
    tagger = build_tagger(zh_dataset(), word_dim=8, hidden_size=8, char_encoder="none")
    folder = tagger.save_pretrained(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    for key in [k for k in config if k.startswith("lexicon")]:
        del config[key]
    (folder / "config.json").write_text(json.dumps(config))
    loaded = SequenceTagger.from_pretrained(folder)
    assert loaded.lexicon is None and loaded.model.lexicon is None
    assert TaggerConfig.from_dict({"vocab_size": 5, "num_tags": 3, "char_encoder": "none"}).lexicon_size == 0


def test_jieba_dictionary_is_the_default_lexicon_of_the_chinese_recipe():
    pytest.importorskip("jieba")
    from textrnn.lexicon import lexicon_path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    args = importlib.import_module("ner_resume_zh").parse_args([])
    assert (args.lexicon, args.lexicon_weighting, args.lexicon_vectors, args.lexicon_dim) == (
        "jieba", "frequency", "word2vec", 50)
    words = read_lexicon_file(lexicon_path("jieba"))
    assert len(words) > 300_000 and words["北京大学"] > 0


@pytest.mark.parametrize("fields,message", [
    (dict(lexicon_size=10, lexicon_rows=2), "lexicon_rows >= 3"),
    (dict(lexicon_size=10, lexicon_rows=5, lexicon_trainable=6), "lexicon_trainable .6. exceeds lexicon_rows .5."),
    (dict(lexicon_size=10, lexicon_rows=5, lexicon_dim=0), "lexicon_dim must be positive"),
])
def test_inconsistent_lexicon_fields_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        TaggerConfig(vocab_size=5, num_tags=3, char_encoder="none", **fields)


# classifiers with a lexicon ------------------------------------------------------------------
def test_a_classifier_with_a_lexicon_learns_batches_exactly_and_loads_without_gensim(lexicon_file, tmp_path):
    from textrnn.tasks.classification import TextClassifier, build_classifier, train_classifier

    clf = build_classifier(zh_sentiment(), word_dim=8, hidden_size=12, dropout=0.0, bigrams=True,
                           lexicon=lexicon_file, lexicon_dim=6, seed=0)
    assert clf.config.lexicon_size == 13 and clf.model.lexicon is not None
    assert clf.encode("北京大学")["lexicon"][0] != []  # 北京 and 北京大学 begin here
    data = zh_sentiment()
    result = train_classifier(clf, data, data, TrainingConfig(max_epochs=40, batch_size=2, optimizer="adam",
                                                              lr=0.02, metric="accuracy", seed=0))
    assert result.best_score == 100.0
    clf.model.eval()
    texts = [t for t, _ in ZH_SENTIMENT] + ["没有词", ""]  # no lexicon word, and no token at all
    items = [clf.encode(t) for t in texts]
    with torch.no_grad():
        together = clf.model.logits(clf.collate(items))
        for i, item in enumerate(items):
            assert torch.allclose(together[i], clf.model.logits(clf.collate([item]))[0], atol=1e-5)
    folder = clf.save_pretrained(tmp_path / "clf")
    assert (folder / "lexicon.json").exists()
    expected = clf.predict_proba(texts).tolist()
    script = textwrap.dedent(f"""
        import json, sys
        from textrnn.tasks.classification import TextClassifier
        clf = TextClassifier.from_pretrained({str(folder)!r})
        print(json.dumps({{"probs": clf.predict_proba({texts!r}).tolist(), "gensim": "gensim" in sys.modules,
                          "jieba": "jieba" in sys.modules}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["gensim"] is False and loaded["jieba"] is False
    assert len(loaded["probs"]) == len(expected)
    for got, want in zip(loaded["probs"], expected):
        assert got == pytest.approx(want, abs=1e-6)
    data = json.loads((folder / "lexicon.json").read_text(encoding="utf-8"))
    data["lexicon"] = data["lexicon"][:-1]
    (folder / "lexicon.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataFormatError, match="holds 11 words but config.json says lexicon_size 13"):
        TextClassifier.from_pretrained(folder)
    from textrnn.hub import model_card

    card = model_card("text-classification", clf.config.to_dict())
    assert "SoftLexicon) of the 12 lexicon words in `lexicon.json`" in card and "bigrams" in card
    plain = build_classifier(zh_sentiment(), word_dim=8, hidden_size=12)
    plain.save_pretrained(folder)  # over the lexicon model: its lexicon.json must go with it
    assert not (folder / "lexicon.json").exists()
    assert TextClassifier.from_pretrained(folder).lexicon is None


def test_character_flags_are_shared_by_taggers_and_classifiers(lexicon_file):
    import argparse

    from textrnn.options import (add_classifier_args, add_tagger_args, add_training_args, classifier_kwargs,
                                 tagger_kwargs)

    for add, kwargs in ((add_tagger_args, tagger_kwargs), (add_classifier_args, classifier_kwargs)):
        parser = argparse.ArgumentParser()
        add(parser)
        add_training_args(parser)
        got = kwargs(parser.parse_args(["--bigrams", "--bigram-min-freq", "2", "--bigram-init", "uniform",
                                        "--lexicon", lexicon_file, "--lexicon-dim", "7"]))
        assert (got["bigrams"], got["bigram_min_freq"], got["bigram_init"], got["lexicon"], got["lexicon_dim"]) == (
            True, 2, "uniform", lexicon_file, 7)
        assert "lexicon" not in kwargs(parser.parse_args(["--lexicon", "none"]))
    tagger, classifier = argparse.ArgumentParser(), argparse.ArgumentParser()
    add_tagger_args(tagger)
    add_classifier_args(classifier)
    # the tagger's bigram vectors keep torch's N(0, 1) start, on which its settings were chosen
    assert (tagger.parse_args([]).bigram_init, classifier.parse_args([]).bigram_init) == ("normal", "uniform")


def test_tagger_bigram_vectors_start_as_asked_and_rare_ones_share_a_row():
    normal = build_tagger(zh_dataset(), word_dim=8, hidden_size=8, char_encoder="none", bigrams=True, seed=0)
    uniform = build_tagger(zh_dataset(), word_dim=8, hidden_size=8, char_encoder="none", bigrams=True, seed=0,
                           bigram_init="uniform")
    bound = (3.0 / uniform.config.bigram_dim) ** 0.5
    assert normal.model.bigrams.weight.abs().max() > 1.0
    assert 0 < uniform.model.bigrams.weight.abs().max() <= bound and torch.all(uniform.model.bigrams.weight[0] == 0)
    rare = build_tagger(zh_dataset(), word_dim=8, hidden_size=8, char_encoder="none", bigrams=True, bigram_min_freq=2)
    assert 2 < len(rare.bigrams) < len(normal.bigrams) == normal.config.bigram_vocab_size
    with pytest.raises(ConfigError, match="--bigram-init"):
        build_tagger(zh_dataset(), char_encoder="none", bigrams=True, bigram_init="zeros")
