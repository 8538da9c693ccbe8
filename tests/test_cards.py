"""Data cards: readable by huggingface_hub, hashes and counts true to the data, mismatches caught."""
import pytest
from huggingface_hub import DatasetCard

from textrnn.data import available_cards, card_for, cards_dir, load_corpus, verify_file
from textrnn.data import cards as C
from textrnn.data.cards import default_data_dir
from textrnn.errors import ConfigError, DataCardMismatch

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not (DATA / "SHA256SUMS").is_file(), reason="shared corpora not present")
CORPORA = ["conll2003", "conllpp", "sst2", "chnsenticorp", "resume_ner"]

# Counts from the data README (not from the cards), so a wrong card fails here.
README = {
    ("conll2003", "train"): {"sentences": 14041, "tokens": 203621, "entities": 23499, "docstart_lines": 946},
    ("conll2003", "validation"): {"sentences": 3250, "tokens": 51362, "entities": 5942, "docstart_lines": 216},
    ("conll2003", "test"): {"sentences": 3453, "tokens": 46435, "entities": 5648, "docstart_lines": 231},
    ("conllpp", "test"): {"entities": 5702},
    ("sst2", "train"): {"documents": 6920, "labels": {"negative": 3310, "positive": 3610}},
    ("sst2", "validation"): {"documents": 872},
    ("sst2", "test"): {"documents": 1821},
    ("chnsenticorp", "train"): {"documents": 9600, "labels": {"negative": 4801, "positive": 4799}},
    ("chnsenticorp", "test"): {"documents": 1200},
    ("resume_ner", "train"): {"sentences": 3821, "tokens": 124099},
    ("resume_ner", "validation"): {"sentences": 463, "tokens": 13890},
    ("resume_ner", "test"): {"sentences": 477, "tokens": 15100},
}


def test_every_card_is_a_hub_dataset_card():
    assert set(available_cards()) == set(CORPORA) | {"glove-6b-50d"}
    for name in available_cards():
        data = DatasetCard.load(cards_dir() / f"{name}.md").data.to_dict()
        for key in ("pretty_name", "license", "language", "task_categories", "textrnn"):
            assert data.get(key), (name, key)
        card = card_for(name)
        assert card.files and all(len(spec.sha256) == 64 for spec in card.files.values())
        body = (cards_dir() / f"{name}.md").read_text(encoding="utf-8").split("---", 2)[2]
        assert "## Source" in body and "## Licence" in body and "## Format" in body


def test_card_counts_agree_with_the_readme():
    for (name, split), expected in README.items():
        counts = card_for(name).splits[split].counts
        assert {k: counts[k] for k in expected} == expected, (name, split)
    assert list(card_for("chnsenticorp").splits) == ["train", "test"]
    assert card_for("chnsenticorp").splits["test"].file == "dev.tsv"
    assert list(card_for("conllpp").splits) == ["test"]
    assert card_for("sst2").label_names == {"0": "negative", "1": "positive"}


@needs_data
def test_card_hashes_are_the_sha256sums_and_the_files():
    sums = dict(line.split()[::-1] for line in (DATA / "SHA256SUMS").read_text().splitlines() if line.strip())
    listed = {}
    for name in available_cards():
        card = card_for(name)
        for spec in card.files.values():
            listed[f"{card.folder}/{spec.file}"] = spec.sha256
    assert listed == sums
    for name in available_cards():
        card = card_for(name)
        for key in card.files:
            assert verify_file(name, card.file_path(key)) == card.files[key].sha256


def test_a_file_hash_is_remembered_by_path_size_and_mtime(tmp_path, monkeypatch):
    """A second check of an unchanged file reads nothing; a changed size or mtime reads it again."""
    import hashlib
    import os

    path = tmp_path / "train.txt"
    path.write_bytes(b"Peter B-PER\n")
    opened = []
    monkeypatch.setattr(C, "open", lambda *a, **k: (opened.append(a[0]), open(*a, **k))[1], raising=False)
    C._HASHES.clear()
    assert C.sha256_file(path) == hashlib.sha256(b"Peter B-PER\n").hexdigest() and len(opened) == 1
    assert C.sha256_file(str(path)) == C.sha256_file(path) and len(opened) == 1
    path.write_bytes(b"Petra B-PER\n")  # same size: only the mtime tells
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert C.sha256_file(path) == hashlib.sha256(b"Petra B-PER\n").hexdigest() and len(opened) == 2
    path.write_bytes(b"Petra B-PER\nleft O\n")
    assert C.sha256_file(path) == hashlib.sha256(b"Petra B-PER\nleft O\n").hexdigest() and len(opened) == 3


def copy_corpus(src_name, tmp_path, lines=None, replace=None):
    """Copy conll2003/train.txt into tmp_path/conll2003/, optionally truncated or edited."""
    folder = tmp_path / "conll2003"
    folder.mkdir(parents=True, exist_ok=True)
    text = (DATA / "conll2003" / src_name).read_text(encoding="utf-8")
    if lines is not None:
        text = "\n".join(text.split("\n")[:lines]) + "\n"
    if replace is not None:
        text = text.replace(*replace, 1)
    (folder / src_name).write_text(text, encoding="utf-8")
    return folder / src_name


@needs_data
def test_truncated_file_raises_a_mismatch_naming_file_and_count(tmp_path):
    path = copy_corpus("train.txt", tmp_path, lines=1000)
    with pytest.raises(DataCardMismatch) as info:
        load_corpus("conll2003", data_dir=tmp_path, splits="train")
    message = str(info.value)
    assert message.startswith(f"{path}: does not match data card conll2003.md")
    assert "sentences expected 14041, found " in message and "tokens expected 203621, found " in message
    assert "SHA-256 expected c99b2685" in message
    assert load_corpus("conll2003", data_dir=tmp_path, splits="train", verify=False)["train"].num_rows < 14041


@needs_data
def test_file_cut_mid_line_is_still_a_card_mismatch(tmp_path):
    folder = tmp_path / "conll2003"
    folder.mkdir()
    (folder / "train.txt").write_bytes((DATA / "conll2003" / "train.txt").read_bytes()[:5011])
    with pytest.raises(DataCardMismatch, match=r"train.txt(:\d+)?: .*SHA-256 expected"):
        load_corpus("conll2003", data_dir=tmp_path, splits="train")


@needs_data
def test_same_counts_other_content_is_caught_by_the_hash(tmp_path, monkeypatch):
    copy_corpus("valid.txt", tmp_path, replace=("CRICKET", "CROCKET"))
    monkeypatch.setenv("TEXTRNN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataCardMismatch) as info:
        load_corpus("conll2003", splits=["validation"])
    assert "valid.txt" in str(info.value) and "SHA-256 expected f1f64693" in str(info.value)
    assert "sentences expected" not in str(info.value)


@needs_data
def test_verify_file_for_word_vectors(tmp_path):
    fake = tmp_path / "glove.6B.50d.txt.gz"
    fake.write_bytes(b"not vectors")
    with pytest.raises(DataCardMismatch, match=r"glove.6B.50d.txt.gz: does not match data card glove-6b-50d.md: "
                                               r"words expected 400000, found 399999; SHA-256 expected 7913518"):
        verify_file("glove-6b-50d", fake, counts={"words": 399999, "dimensions": 50})
    with pytest.raises(DataCardMismatch, match="lists no file named 'other.txt'"):
        verify_file("glove-6b-50d", tmp_path / "other.txt")


def test_custom_cards_folder_and_unknown_names(tmp_path, monkeypatch):
    data = tmp_path / "data" / "tiny"
    data.mkdir(parents=True)
    (data / "train.txt").write_text("Peter B-PER\nleft O\n\nBonn B-LOC\n", encoding="utf-8")
    sha = C.sha256_file(data / "train.txt")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "tiny.md").write_text(
        "---\npretty_name: Tiny\nlicense: cc0-1.0\nlanguage: [en]\ntask_categories: [token-classification]\n"
        "textrnn:\n  folder: tiny\n  task: tagging\n  format: conll\n  options: {scheme: IOB2}\n"
        "  label_names: [O, B-PER, B-LOC]\n"
        f"  splits:\n    train:\n      file: train.txt\n      sha256: {sha}\n"
        "      counts: {sentences: 2, tokens: 3, entities: 3}\n---\n# Tiny\n", encoding="utf-8")
    monkeypatch.setenv("TEXTRNN_DATA_CARDS", str(cards))
    assert available_cards() == ["tiny"]
    with pytest.raises(DataCardMismatch, match="entities expected 3, found 2"):
        load_corpus("tiny", data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match="no data card named 'nope'.*cards: tiny"):
        card_for("nope")


def test_word_vectors_are_not_a_corpus():
    with pytest.raises(ConfigError, match="embeddings card, not a corpus"):
        load_corpus("glove-6b-50d")
