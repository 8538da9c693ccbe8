"""An edited or mismatched config.json: one clear error naming config.json and the field, at load time.

Each case edits the config.json (or the tokenizer) of a saved tiny model; loading must fail with a
DataFormatError whose message starts with the path of config.json and names what to check, never
a raw TypeError or torch traceback, and never load a model that fails or degrades later.
"""
import json
import shutil

import pytest
import torch

from textrnn import load_model
from textrnn.config import ClassifierConfig, TaggerConfig, TrainingConfig
from textrnn.errors import ConfigError, DataFormatError
from textrnn.tasks.classification import build_classifier
from textrnn.tasks.tagging import build_tagger
from tests.helpers import TINY_NER, classification_dataset, tagging_dataset


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    tagger = build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4, char_filters=4)
    other = build_tagger(tagging_dataset(TINY_NER[:2]), word_dim=8, hidden_size=8, char_dim=4, char_filters=4)
    clf = build_classifier(classification_dataset(), word_dim=8, hidden_size=8)
    return {"tagger": tagger.save_pretrained(root / "tagger"), "other": other.save_pretrained(root / "other"),
            "classifier": clf.save_pretrained(root / "classifier")}


def edited(saved, tmp_path, which, change):
    folder = tmp_path / which
    shutil.copytree(saved[which], folder)
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def set_(**values):
    return lambda config: config.update(values)


def drop(*keys):
    return lambda config: [config.pop(k) for k in keys]


TAGGER_CASES = [
    (set_(vocab_size=40), "does not match model.safetensors: words.frozen is missing from model.safetensors"
                          ".*Check vocab_size"),
    (set_(vocab_size=40, num_trainable_words=40), r"does not match model.safetensors: words.trained.weight is "
                                                  r"\[31, 8\] in model.safetensors but \[40, 8\] from config.json"),
    (set_(vocab_size=10 ** 12), "Check vocab_size"),  # an error, not a terabyte allocation
    (set_(hidden_size="8"), r"hidden_size must be an integer; got '8' \(a string\)"),
    (set_(hidden_size=8.0), r"hidden_size must be an integer; got 8.0"),
    (set_(dropout="0.5"), "dropout must be a number"),
    (set_(use_crf="yes"), "use_crf must be true or false"),
    (set_(vocab_size=None), r"vocab_size must be an integer; got None \(null\)"),
    (set_(labels="O B-PER"), "labels must be a list"),
    (set_(labels=["O", 3, "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]), r"labels\[1\] must be a string"),
    (drop("labels"), "labels is missing or empty"),
    (lambda c: c["labels"].pop(), "num_tags is 7 but 6 labels"),
    (lambda c: c["labels"].__setitem__(1, "O"), "labels must be unique; 'O' appear"),
    (set_(rnn="transformer"), "rnn must be one of lstm, gru; got 'transformer'"),
    (set_(rnn="gru"), r"encoder.forward_rnns.0.weight_ih_l0 is \[32, 12\] in model.safetensors but \[24, 12\]"
                      r".*Check rnn, hidden_size, num_layers"),
    (set_(num_layers=2), "encoder.forward_rnns.1.weight_ih_l0 is missing from model.safetensors.*num_layers"),
    (set_(use_crf=False), "model.safetensors holds crf.transitions, which config.json does not build.*use_crf"),
    (set_(scheme="IOB3"), "scheme must be one of"),
    (set_(num_trainable_words=99), "num_trainable_words must be between 1 and vocab_size"),
    (set_(hiden_size=8), "does not know the setting.s. hiden_size"),
    (drop("vocab_size"), "needs the setting.s. vocab_size"),
]


@pytest.mark.parametrize("change, message", TAGGER_CASES)
def test_edited_tagger_config_is_a_clear_error(saved, tmp_path, change, message):
    folder = edited(saved, tmp_path, "tagger", change)
    with pytest.raises(DataFormatError, match=message) as info:
        load_model(folder)
    assert str(info.value).startswith(f"{folder / 'config.json'}: ")


@pytest.mark.parametrize("change, message", [
    (set_(labels=["negative", "neutral", "positive"]), r"out.weight is \[2, 16\] .* \[3, 16\].*Check labels"),
    (drop("labels"), "needs at least 2 labels"),
    (set_(multi_label="false"), "multi_label must be true or false"),
    (set_(pooling="median"), "pooling must be one of"),
    (set_(class_weights=["1", "2"]), r"class_weights\[0\] must be a number"),
    (set_(input_dropout=1.5), r"input_dropout must be in \[0, 1\)"),
])
def test_edited_classifier_config_is_a_clear_error(saved, tmp_path, change, message):
    folder = edited(saved, tmp_path, "classifier", change)
    with pytest.raises(DataFormatError, match=message) as info:
        load_model(folder)
    assert str(info.value).startswith(f"{folder / 'config.json'}: ")


@pytest.mark.parametrize("name, field", [("tokenizer.json", "vocab_size"), ("char_vocab.json", "num_chars")])
def test_a_vocabulary_of_another_model_is_a_clear_error(saved, tmp_path, name, field):
    folder = edited(saved, tmp_path, "tagger", lambda config: None)
    shutil.copy(saved["other"] / name, folder / name)
    with pytest.raises(DataFormatError, match=rf"config.json: {field} is \d+ but {name} holds \d+ entries"):
        load_model(folder)


def test_an_unedited_config_loads_and_a_valid_edit_takes_effect(saved, tmp_path):
    assert load_model(saved["tagger"]).config.use_crf
    folder = edited(saved, tmp_path, "classifier", set_(pooling="mean", dropout=0))  # no weights of their own
    loaded = load_model(folder)
    assert loaded.config.pooling == "mean" and loaded.config.dropout == 0.0


def test_from_dict_checks_types_from_the_annotations():
    assert TaggerConfig.from_dict({"vocab_size": 10, "labels": ["O", "B-X"], "char_encoder": "none"}).labels == ("O", "B-X")
    with pytest.raises(ConfigError, match=r"num_tags must be an integer; got True \(true or false\)"):
        TaggerConfig.from_dict({"vocab_size": 10, "num_tags": True})
    with pytest.raises(ConfigError, match="thresholds must be a list"):
        ClassifierConfig.from_dict({"vocab_size": 10, "labels": ["a", "b"], "thresholds": 0.5})
    with pytest.raises(ConfigError, match="lr must be a number; got nan"):
        TrainingConfig.from_dict({"lr": float("nan")})
    assert TrainingConfig.from_dict({"lr": 1, "extra": {"note": "x"}}).lr == 1.0
