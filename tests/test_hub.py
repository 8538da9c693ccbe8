"""Model folders and the hub, without a network: a pre-populated HF cache, and push_to_hub with the
hub's transport (HfApi.create_repo / create_commit) replaced by recorders."""
import json

import pytest
import torch
from huggingface_hub import constants

from textrnn import load_model, pipeline
from textrnn.errors import DataFormatError
from textrnn.hub import push_to_hub, write_model_card
from textrnn.tasks.tagging import build_tagger
from tests.helpers import TINY_NER, tagging_dataset


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    tagger = build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4, char_filters=4)
    folder = tagger.save_pretrained(tmp_path_factory.mktemp("m") / "tiny-ner")
    write_model_card(folder, "token-classification", dataset="conll2003", metrics={"f1": 12.5})
    (folder / "metrics.jsonl").write_text("{}\n")  # run leftovers that must not be uploaded
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "trainer_state.json").write_text("{}")
    return tagger, folder


def populate_cache(cache, repo_id, folder, commit="a" * 40):
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "char_vocab.json", "README.md"):
        (snapshot / name).write_bytes((folder / name).read_bytes())


def test_repo_id_loads_from_the_local_cache_offline(saved, tmp_path, monkeypatch):
    tagger, folder = saved
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    populate_cache(tmp_path, "textrnn-test/tiny-ner", folder)
    loaded = load_model("textrnn-test/tiny-ner")
    sentences = [t for t, _ in TINY_NER]
    assert loaded.predict(sentences) == tagger.predict(sentences)
    ner = pipeline("ner", model="textrnn-test/tiny-ner")
    assert ner("John Smith lives in Paris .") == pipeline("ner", model=tagger)("John Smith lives in Paris .")
    with pytest.raises(DataFormatError, match="not in the local Hugging Face cache"):
        load_model("textrnn-test/not-cached")


class RecordingHub:
    """An httpx transport that answers like the hub and records every request (no socket opened)."""

    def __init__(self):
        self.requests = []

    def __call__(self, request):
        import httpx2

        body = request.read()
        self.requests.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": "https://huggingface.co/my-org/tiny-ner"})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        if "/preupload/" in path:
            files = json.loads(body)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            return httpx2.Response(200, json={"commitUrl": "https://huggingface.co/my-org/tiny-ner/commit/abc",
                                              "commitOid": "abc" + "0" * 37})
        return httpx2.Response(404, json={"error": f"unexpected {request.method} {path}"})


@pytest.fixture
def recording_hub(monkeypatch):
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    hub = RecordingHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub)))
    yield hub
    set_client_factory(_http.default_client_factory)


def test_push_sends_exactly_the_model_files_in_one_commit(saved, recording_hub):
    _, folder = saved
    url = push_to_hub(folder, "my-org/tiny-ner", private=True, token="hf_test")
    assert url == "https://huggingface.co/my-org/tiny-ner/commit/abc"
    methods_paths = [(m, p) for m, p, _ in recording_hub.requests]
    assert methods_paths[0] == ("POST", "/api/repos/create")
    create = json.loads(recording_hub.requests[0][2])
    assert create["name"] == "tiny-ner" and create["organization"] == "my-org" and create["visibility"] == "private"
    commits = [body for m, p, body in recording_hub.requests if "/commit/" in p]
    assert len(commits) == 1  # one commit with every file
    lines = [json.loads(line) for line in commits[0].decode().splitlines()]
    assert lines[0]["key"] == "header" and lines[0]["value"]["summary"] == "Upload textrnn model"
    files = {line["value"]["path"]: line["value"] for line in lines if line["key"] == "file"}
    assert set(files) == {"config.json", "model.safetensors", "tokenizer.json", "char_vocab.json", "README.md"}
    import base64

    for name, value in files.items():
        assert base64.b64decode(value["content"]) == (folder / name).read_bytes()
    card = (folder / "README.md").read_text()
    assert "model-index" in card and "value: 12.5" in card and "library_name: textrnn" in card


def test_push_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(DataFormatError, match="no config.json"):
        push_to_hub(tmp_path, "my-org/nothing")


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64), "not a readable safetensors file"),
    (lambda f: (f / "config.json").write_text('{"architecture": "birnn-tagger/1", "vocab_'), "not valid JSON"),
    (lambda f: (f / "config.json").write_text(json.dumps({"architecture": "birnn-tagger/2"})),
     "unknown architecture 'birnn-tagger/2'"),
    (lambda f: (f / "config.json").unlink(), "no config.json"),
])
def test_damaged_folders_are_clear_errors(saved, tmp_path, damage, message):
    _, folder = saved
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in folder.iterdir():
        if p.is_file():
            (copy / p.name).write_bytes(p.read_bytes())
    damage(copy)
    with pytest.raises(DataFormatError, match=message):
        load_model(copy)


def test_push_sends_an_exported_folder_with_its_graph(saved, recording_hub, tmp_path):
    pytest.importorskip("onnxruntime")
    from textrnn.export import export_model

    tagger, _ = saved
    folder = export_model(tagger, tmp_path / "onnx")
    push_to_hub(folder, "my-org/tiny-ner-onnx", token="hf_test")
    commits = [body for m, p, body in recording_hub.requests if "/commit/" in p]
    lines = [json.loads(line) for line in commits[0].decode().splitlines()]
    files = {line["value"]["path"] for line in lines if line["key"] == "file"}
    assert files == {"config.json", "model.onnx", "crf.safetensors", "tokenizer.json", "char_vocab.json"}
    (folder / "model.onnx").unlink()
    with pytest.raises(DataFormatError, match="no model.onnx: nothing to push"):
        push_to_hub(folder, "my-org/tiny-ner-onnx", token="hf_test")
