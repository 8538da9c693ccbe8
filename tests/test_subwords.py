"""fastText-initialised models carry their n-gram table: unseen words get subword vectors, with no
gensim at load time (checked in a fresh process)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.tasks.classification import build_classifier, train_classifier
from tests.helpers import TINY_SENTIMENT, classification_dataset

UNSEEN = "wonderfully"  # shares n-grams with "wonderful", appears nowhere in the data


@pytest.fixture(scope="module")
def fasttext_classifier():
    torch.manual_seed(0)
    data = classification_dataset(TINY_SENTIMENT * 4)
    # min_freq=5 leaves training words out of the vocabulary, so training batches mix known and unknown
    clf = build_classifier(data, embeddings="fasttext", word_dim=16, hidden_size=8, min_freq=5, dropout=0.0)
    train_classifier(clf, data, data, TrainingConfig(max_epochs=2, batch_size=4, optimizer="adam", lr=0.01,
                                                     metric="accuracy"))
    return clf


def word_vector(clf, word):
    item = clf.encode(word)
    batch = clf.collate([item])
    with torch.no_grad():
        return clf.model.words(batch["words"], batch.get("oov_positions"), batch.get("oov_buckets"))[0, 0]


def test_unseen_word_gets_its_fasttext_vector(fasttext_classifier):
    clf = fasttext_classifier
    assert clf.config.subword_buckets > 0 and clf.words.id(UNSEEN) == 1
    from textrnn.subwords import subword_vector

    table = {"min_n": clf.config.subword_min_n, "max_n": clf.config.subword_max_n,
             "bucket": clf.config.subword_buckets, "vectors_ngrams": clf.model.words.ngrams.numpy()}
    vector = word_vector(clf, UNSEEN)
    unk = clf.model.words.trained.weight[1].detach()
    assert not torch.allclose(vector, unk)
    assert np.allclose(vector.numpy(), subword_vector(UNSEEN, table), atol=1e-6)


def test_subword_vectors_survive_save_and_load_without_gensim(fasttext_classifier, tmp_path):
    clf = fasttext_classifier
    folder = clf.save_pretrained(tmp_path / "ft")
    expected = word_vector(clf, UNSEEN).tolist()
    code = f"""
import json, sys, torch
from textrnn import load_model
clf = load_model({str(folder)!r})
item = clf.encode({UNSEEN!r}); batch = clf.collate([item])
with torch.no_grad():
    v = clf.model.words(batch["words"], batch["oov_positions"], batch["oov_buckets"])[0, 0].tolist()
print(json.dumps({{"gensim_loaded": "gensim" in sys.modules, "vector": v,
                  "prediction": clf.predict([{UNSEEN!r} + " film"])}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["gensim_loaded"] is False
    assert result["vector"] == pytest.approx(expected, abs=1e-6)
    assert result["prediction"] == clf.predict([UNSEEN + " film"])
