"""Fast checks of the recipes: flags parse, defaults are the documented ones, the demo's tables print."""
import importlib
import sys
from pathlib import Path

import pytest

from tests.helpers import needs_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))

RECIPES = ["ner_conll2003", "ner_resume_zh", "sentiment_sst2", "sentiment_chnsenticorp"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_help_and_defaults_parse(name, capsys):
    recipe = importlib.import_module(name)
    with pytest.raises(SystemExit) as exit_info:
        recipe.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--output-dir" in capsys.readouterr().out
    args = recipe.parse_args([])
    assert args.output_dir.startswith("runs/")


def test_recipe_defaults_are_the_measured_settings():
    """docs/benchmarks.md reports runs of these defaults; changing one needs a new run."""
    ner = importlib.import_module("ner_conll2003").parse_args([])
    assert (ner.max_epochs, ner.batch_size, ner.optimizer, ner.lr, ner.hidden_size, ner.char_features,
            ner.crf) == (50, 32, "sgd", 0.015, 256, "cnn", True)
    sst2 = importlib.import_module("sentiment_sst2").parse_args([])
    assert (sst2.pooling, sst2.hidden_size, sst2.extra_pretrained, sst2.optimizer) == ("max", 150, 100_000, "adam")
    chn = importlib.import_module("sentiment_chnsenticorp").parse_args([])
    assert (chn.bigrams, chn.embeddings, chn.max_epochs) == (True, "word2vec", 12)


@needs_data
def test_demo_prints_a_table_per_corpus(capsys):
    demo = importlib.import_module("demo")
    demo.show_corpora(str(demo.default_data_dir()))
    out = capsys.readouterr().out
    for name in demo.CORPORA:
        assert f"\n{name}\n" in out
    assert "14,041" in out and "negative 3,310" in out and "TITLE 6,308" in out
