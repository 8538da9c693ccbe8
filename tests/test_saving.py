"""Saving a model over another: the folder holds one whole model, the old or the new, whatever fails.

Failures are injected (a vocabulary that cannot be written, a folder where a file goes, a rename
that fails at each step of the save in turn); the run's own files in the folder must survive.
"""
import os
import shutil

import pytest
import torch

from textrnn import load_model
from textrnn.errors import DataFormatError
from textrnn.tasks.tagging import build_tagger
from textrnn.vocab import CharVocab
from tests.helpers import TINY_NER, tagging_dataset

UMASK = os.umask(0)
os.umask(UMASK)
RUN_FILES = {"metrics.jsonl": "{}\n", "results.json": "{}\n", "training_curves.png": "png",
             "checkpoint/trainer_state.json": "{}"}


def tiny(seed, rows=TINY_NER, **options):
    torch.manual_seed(seed)
    return build_tagger(tagging_dataset(rows), word_dim=8, hidden_size=8, char_dim=4, char_filters=4, **options)


@pytest.fixture(scope="module")
def old_and_new():
    # different vocabularies, so new weights beside an old tokenizer or config cannot load
    return tiny(1), tiny(2, rows=TINY_NER[:3], bigrams=True)


@pytest.fixture
def folder(tmp_path, old_and_new):
    old, _ = old_and_new
    path = old.save_pretrained(tmp_path / "model")
    for name, text in RUN_FILES.items():
        (path / name).parent.mkdir(exist_ok=True)
        (path / name).write_text(text)
    return path


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_weights(loaded, tagger):
    want = tagger.model.state_dict()
    got = loaded.model.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert loaded.words.words == tagger.words.words


def litter(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith((".tmp", ".old"))]


def assert_old_model_intact(folder, before, old):
    assert snapshot(folder) == before  # every file byte for byte, the run's files included
    assert litter(folder) == []
    assert_same_weights(load_model(folder), old)


def test_a_vocabulary_that_cannot_be_written_leaves_the_old_model(folder, old_and_new, monkeypatch):
    old, new = old_and_new
    before = snapshot(folder)

    def fail(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CharVocab, "save", fail)
    with pytest.raises(OSError, match="No space left"):
        new.save_pretrained(folder)
    assert_old_model_intact(folder, before, old)


def test_a_folder_where_a_model_file_goes_is_a_clear_error_and_changes_nothing(folder, old_and_new):
    old, new = old_and_new
    (folder / "bigram_vocab.json").mkdir()  # the new model has bigrams, the old one none
    before = snapshot(folder)
    with pytest.raises(DataFormatError, match=r"bigram_vocab.json: cannot save the model: expected a file"):
        new.save_pretrained(folder)
    assert_old_model_intact(folder, before, old)


def count_renames(monkeypatch, save):
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append((a, b)), real(a, b))[1])
    save()
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def test_a_rename_failing_at_any_step_leaves_the_old_model(tmp_path, folder, old_and_new, monkeypatch):
    old, new = old_and_new
    shutil.copytree(folder, tmp_path / "dry-run")
    renames = count_renames(monkeypatch, lambda: new.save_pretrained(tmp_path / "dry-run"))
    assert renames == 4 + 4 + 5  # staged JSON files (each written whole), old files out, new files in
    before = snapshot(folder)
    real = os.replace
    for failing in range(renames):
        calls = []

        def replace(a, b):
            calls.append(a)
            if len(calls) == failing + 1:
                raise OSError(5, f"Input/output error (injected at rename {failing})")
            return real(a, b)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(OSError, match="injected"):
            new.save_pretrained(folder)
        monkeypatch.setattr(os, "replace", real)
        assert_old_model_intact(folder, before, old)


def test_a_save_killed_mid_swap_never_loads_as_a_mix_and_the_next_save_recovers(folder, old_and_new, monkeypatch):
    """After the k-th rename every rename fails, rollback included: what a kill -9 would leave."""
    old, new = old_and_new
    real = os.replace
    seen_interrupted = False
    for dead_after in range(4, 13):  # renames 0-3 stage the JSON files; 4-12 are the swap
        calls = []

        def replace(a, b):
            calls.append(a)
            if len(calls) > dead_after:
                raise OSError(5, "Input/output error (injected)")
            return real(a, b)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises((OSError, DataFormatError)):
            new.save_pretrained(folder)
        monkeypatch.setattr(os, "replace", real)
        try:
            loaded = load_model(folder)
        except DataFormatError as err:  # never a mix: either one whole model, or this message
            assert "a save into this folder was interrupted" in str(err) and ".textrnn-save-" in str(err)
            seen_interrupted = True
        else:
            assert_same_weights(loaded, old)
        old.save_pretrained(folder)  # cleans the leftovers and puts the old model back
        assert litter(folder) == []
        assert_same_weights(load_model(folder), old)
    assert seen_interrupted  # the range above reaches into the swap


def test_a_new_model_replaces_every_old_model_file_and_keeps_the_run_files(folder, old_and_new):
    old, new = old_and_new
    new.save_pretrained(folder)
    assert (folder / "bigram_vocab.json").exists()
    assert_same_weights(load_model(folder), new)
    old.save_pretrained(folder)  # no bigrams: the new model's bigram vocabulary must not stay behind
    assert not (folder / "bigram_vocab.json").exists()
    assert_same_weights(load_model(folder), old)
    for name, text in RUN_FILES.items():
        assert (folder / name).read_text() == text


def test_every_saved_file_has_the_same_shareable_mode(folder, old_and_new):
    _, new = old_and_new
    (folder / "tokenizer.json").chmod(0o444)  # a read-only file is replaced like any other
    new.save_pretrained(folder)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir() if p.is_file() and p.suffix != ".png"}
    model_files = {"config.json", "model.safetensors", "tokenizer.json", "char_vocab.json", "bigram_vocab.json"}
    assert model_files <= set(modes)
    assert {name: modes[name] for name in model_files} == {name: 0o666 & ~UMASK for name in model_files}
    assert_same_weights(load_model(folder), new)
