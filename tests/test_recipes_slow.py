"""Each recipe's model, saved and reloaded by pipeline() in a fresh process, predicts as before saving.
Slow (real corpora, one short epoch each): `make test-slow`."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))

NER_TEXTS = ["George Washington went to Washington.", "EU rejects German call to boycott British lamb ."]
SENTIMENT_TEXTS = ["A stirring, funny film.", "dull and lifeless", "这部电影不好看，浪费时间。"]


def fresh_process_predictions(task, folder, texts):
    code = ("import json, sys; from textrnn import pipeline; "
            f"print(json.dumps(pipeline({task!r}, model={str(folder)!r})({texts!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def split_floats(value, floats):
    """The value with every float replaced by None (compared exactly), floats collected apart."""
    if isinstance(value, float):
        floats.append(value)
        return None
    if isinstance(value, dict):
        return {k: split_floats(v, floats) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [split_floats(v, floats) for v in value]
    return value


def assert_same(before, after):
    floats_before, floats_after = [], []
    assert split_floats(before, floats_before) == split_floats(after, floats_after)
    assert floats_after == pytest.approx(floats_before, abs=1e-5)


def test_ner_recipe_model_reloads_identically(tmp_path):
    import ner_conll2003 as recipe
    from textrnn import pipeline
    from textrnn.options import tagger_kwargs, training_config
    from textrnn.tasks.tagging import build_tagger, train_tagger

    args = recipe.parse_args(["--max-epochs", "1", "--hidden-size", "64", "--output-dir", str(tmp_path / "ner")])
    corpus, _ = recipe.load_data(args.data_dir)
    train = corpus["train"].select(range(3000))
    tagger = build_tagger(train, **tagger_kwargs(args))
    train_tagger(tagger, train, corpus["validation"].select(range(300)), training_config(args))
    before = pipeline("ner", model=tagger)(NER_TEXTS)
    tagger.save_pretrained(args.output_dir)
    assert_same(before, fresh_process_predictions("ner", args.output_dir, NER_TEXTS))


@pytest.mark.parametrize("name", ["sentiment_sst2", "sentiment_chnsenticorp"])
def test_sentiment_recipe_models_reload_identically(tmp_path, name):
    import importlib

    from textrnn import pipeline
    from textrnn.options import classifier_kwargs, training_config
    from textrnn.tasks.classification import build_classifier, train_classifier

    recipe = importlib.import_module(name)
    args = recipe.parse_args(["--max-epochs", "1", "--output-dir", str(tmp_path / name)])
    if name == "sentiment_sst2":
        from textrnn import load_corpus

        corpus = load_corpus("sst2", data_dir=args.data_dir)
        train, dev = corpus["train"], corpus["validation"]
    else:
        train, dev, _ = recipe.load_data(args)
        train = train.select(range(2000))
    clf = build_classifier(train, **classifier_kwargs(args))
    train_classifier(clf, train, dev.select(range(200)), training_config(args))
    before = pipeline("sentiment-analysis", model=clf)(SENTIMENT_TEXTS, top_k=None)
    clf.save_pretrained(args.output_dir)
    after = fresh_process_predictions("sentiment-analysis", args.output_dir, SENTIMENT_TEXTS)
    assert_same([r[0] for r in before], after)
