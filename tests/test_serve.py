"""textrnn serve: Inference API shapes over real HTTP on loopback, dynamic batching, bounds, errors."""
import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from textrnn import pipeline  # noqa: E402
from textrnn.cli import main  # noqa: E402
from textrnn.config import TrainingConfig  # noqa: E402
from textrnn.hub import write_model_card  # noqa: E402
from textrnn.serve import DynamicBatcher, RequestError, ServedModel, ServeSettings, create_app  # noqa: E402
from textrnn.serve.protocol import TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION, parse_request  # noqa: E402
from textrnn.tasks.classification import build_classifier, train_classifier  # noqa: E402
from textrnn.tasks.tagging import build_tagger, train_tagger  # noqa: E402
from tests.helpers import classification_dataset, tagging_dataset  # noqa: E402

SENTENCES = ["John Smith lives in Paris .", "Mary went to New York City", "EU rejects German call .",
             "The UN met in Geneva", "", "Peter likes French wine and Berlin"]


# -- helpers: a server on a free loopback port in a thread, and a plain HTTP client ------------------
@contextlib.contextmanager
def serving(app):
    """Run ``app`` under uvicorn on 127.0.0.1 (a port the OS picks) until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def call(url, payload=None, *, data=None, method=None):
    """(status, decoded JSON or text) of one request; ``payload`` is sent as JSON."""
    if payload is not None:
        data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as err:
        status, body, kind = err.code, err.read(), err.headers.get_content_type()
    return status, json.loads(body) if kind == "application/json" else body.decode()


# -- tiny trained models, saved as folders with a model card -----------------------------------------
@pytest.fixture(scope="module")
def ner_folder(tmp_path_factory):
    torch.manual_seed(0)
    data = tagging_dataset()
    tagger = build_tagger(data, word_dim=16, hidden_size=16, char_dim=8, char_filters=8, dropout=0.0)
    train_tagger(tagger, data, data, TrainingConfig(max_epochs=30, batch_size=3, optimizer="adam", lr=0.02, seed=0))
    folder = tagger.save_pretrained(tmp_path_factory.mktemp("serve") / "ner")
    write_model_card(folder, "token-classification", dataset="tiny-ner", metrics={"f1": 100.0})
    return folder


@pytest.fixture(scope="module")
def ner_model(ner_folder):
    return ServedModel(str(ner_folder))


@pytest.fixture(scope="module")
def ner_url(ner_model):
    settings = ServeSettings(max_batch_size=8, max_wait_ms=20, max_body_bytes=4096, max_input_chars=500)
    with serving(create_app(ner_model, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def reference(ner_folder):
    return pipeline("ner", model=str(ner_folder))


def test_ner_answers_are_the_pipelines_in_inference_api_shapes(ner_url, reference):
    status, one = call(ner_url + "/", {"inputs": SENTENCES[0]})
    assert status == 200 and one == reference(SENTENCES[0])
    assert {e["entity_group"] for e in one} == {"PER", "LOC"}  # the tiny model learnt its sentence
    for e in one:
        assert set(e) == {"entity_group", "score", "word", "start", "end"}
        assert SENTENCES[0][e["start"]:e["end"]] == e["word"] and 0 < e["score"] <= 1
    status, many = call(ner_url + "/predict", {"inputs": SENTENCES, "parameters": {}})
    assert status == 200 and many == reference(SENTENCES) and many[4] == []
    status, tokens = call(ner_url + "/", {"inputs": SENTENCES, "parameters": {"aggregation_strategy": "none"}})
    assert status == 200 and tokens == reference(SENTENCES, aggregation="none")
    assert tokens[0] and set(tokens[0][0]) == {"entity", "score", "index", "word", "start", "end"}
    assert call(ner_url + "/", {"inputs": []}) == (200, [])


def test_concurrent_requests_share_batches_and_each_gets_its_own_answer(ner_url, reference):
    texts = [SENTENCES[i % len(SENTENCES)] + f" {i}" for i in range(32)]
    before = call(ner_url + "/health")[1]
    barrier = threading.Barrier(len(texts))

    def one(text):
        barrier.wait()
        return call(ner_url + "/", {"inputs": text})

    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(one, texts))
    assert answers == [(200, reference(t)) for t in texts]
    after = call(ner_url + "/health")[1]
    assert after["status"] == "ok" and after["items"] - before["items"] == 32
    assert after["largest_batch"] <= 8 and after["batches"] - before["batches"] < 32


def test_batch_size_one_never_batches(ner_model, reference):
    with serving(create_app(ner_model, ServeSettings(max_batch_size=1))) as url:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: call(url + "/", {"inputs": t}), SENTENCES * 2))
        health = call(url + "/health")[1]
    assert answers == [(200, reference(t)) for t in SENTENCES * 2]
    assert health["largest_batch"] == 1 and health["batches"] == len(SENTENCES) * 2


@pytest.mark.parametrize("body,status,expected", [
    (b'{"inputs": "a"', 400, "expected a JSON body like"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b'["a"]', 422, "expected a JSON object"),
    (b'{"text": "a"}', 422, 'unknown field(s) "text"'),
    (b'{"parameters": {}}', 422, 'missing "inputs"'),
    (b'{"inputs": 3}', 422, "a string or a list of strings; got a number"),
    (b'{"inputs": ["a", null]}', 422, "inputs[1] is a null; expected a string"),
    (b'{"inputs": "a", "parameters": {"top_k": 2, "stride": 1}}', 422,
     'unknown parameter(s) "stride", "top_k" for token-classification; this server takes "aggregation_strategy"'),
    (b'{"inputs": "a", "parameters": {"aggregation_strategy": "max"}}', 422, '"simple" (entity spans) or "none"'),
    (b'{"inputs": "a", "options": {"cache": true}}', 422, 'unknown option(s) "cache"'),
    (json.dumps({"inputs": ["ok", "x" * 501]}).encode(), 413, "inputs[1] has 501 characters; this server takes at most 500"),
    (json.dumps({"inputs": ["word " * 99] * 10}).encode(), 413, "larger than this server's limit of 4096 bytes"),
])
def test_bad_requests_get_a_json_error_saying_what_was_expected(ner_url, body, status, expected):
    got_status, answer = call(ner_url + "/", data=body)
    assert got_status == status and set(answer) == {"error"}
    assert expected in answer["error"]


def test_a_chunked_body_is_cut_off_at_the_limit(ner_url):
    host, port = ner_url.rsplit("/", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = iter([b'{"inputs": "'] + [b"x" * 1000] * 6 + [b'"}'])  # no Content-Length: sent chunked
    connection.request("POST", "/", body=chunks, encode_chunked=True, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 413 and "4096 bytes" in json.loads(response.read())["error"]
    connection.close()


def test_unknown_paths_and_methods_answer_in_json(ner_url):
    status, answer = call(ner_url + "/nope", {"inputs": "a"})
    assert status == 404 and "expected POST / or /predict" in answer["error"]
    status, answer = call(ner_url + "/predict")
    assert status == 405 and "GET is not allowed on /predict" in answer["error"]
    options = {"inputs": "John Smith", "options": {"wait_for_model": True, "use_cache": False}}
    assert call(ner_url + "/", options)[0] == 200  # the hosted API's options are accepted


def test_a_failing_model_answers_500_in_json_and_the_server_goes_on(ner_model, monkeypatch):
    def broken(texts, params):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(ner_model, "run", broken)
    with serving(create_app(ner_model)) as url:
        for _ in range(2):  # the batcher survives a failed batch
            status, answer = call(url + "/", {"inputs": "John Smith"})
            assert status == 500 and answer == {"error": "the server failed on this request: RuntimeError: "
                                                         "out of memory, say"}
        assert call(url + "/health")[1]["status"] == "ok"


def test_health_and_info(ner_url, ner_folder):
    status, health = call(ner_url + "/health")
    assert status == 200 and health["status"] == "ok" and health["waiting"] == 0
    status, info = call(ner_url + "/info")
    assert status == 200 and info["task"] == TOKEN_CLASSIFICATION and info["model"] == str(ner_folder)
    assert info["architecture"] == "birnn-tagger/1" and info["entity_types"] == ["LOC", "MISC", "ORG", "PER"]
    assert "B-PER" in info["labels"] and info["scheme"] == "IOB2" and info["config"]["use_crf"] is True
    card = info["card"]
    assert card["library_name"] == "textrnn" and card["pipeline_tag"] == "token-classification"
    result = card["model-index"][0]["results"][0]
    assert result["dataset"]["name"] == "tiny-ner" and result["metrics"][0]["value"] == 100.0
    assert info["serving"]["max_batch_size"] == 8 and info["serving"]["max_input_chars"] == 500


def test_text_classification_answers(tmp_path):
    torch.manual_seed(2)
    data = classification_dataset()
    clf = build_classifier(data, word_dim=16, hidden_size=12, dropout=0.0)
    train_classifier(clf, data, data, TrainingConfig(max_epochs=10, batch_size=4, optimizer="adam", lr=0.02,
                                                     metric="accuracy", seed=0))
    folder = clf.save_pretrained(tmp_path / "clf")
    texts = ["a wonderful , moving film", "dull and lifeless", "这部电影不好看"]
    with serving(create_app(str(folder))) as url:
        best = call(url + "/", {"inputs": texts[0]})
        every = call(url + "/", {"inputs": texts, "parameters": {"top_k": None}})
        bad = call(url + "/", {"inputs": texts[0], "parameters": {"aggregation_strategy": "simple"}})
        info = call(url + "/info")[1]
    reference = pipeline("text-classification", model=str(folder))
    assert best == (200, [reference(texts[0])])
    assert every[0] == 200 and every[1] == reference(texts, top_k=None)
    for answer in every[1]:
        assert sorted(a["label"] for a in answer) == ["negative", "positive"]
        assert answer[0]["score"] >= answer[1]["score"] and sum(a["score"] for a in answer) == pytest.approx(1)
    assert bad[0] == 422 and '"aggregation_strategy"' in bad[1]["error"] and '"top_k"' in bad[1]["error"]
    assert info["task"] == TEXT_CLASSIFICATION and info["labels"] == ["negative", "positive"]
    assert info["multi_label"] is False and info["card"] is None


def test_threads_go_to_onnxruntime_on_the_onnx_backend_and_to_torch_otherwise(ner_folder, monkeypatch):
    """``--threads`` with ``--backend onnx`` sizes onnxruntime's session and leaves torch alone (an
    exported folder serves without importing torch); with torch it is set in the model's thread."""
    pytest.importorskip("onnxruntime")
    import textrnn.serve.app as app_module

    asked = []
    monkeypatch.setattr(app_module, "_torch_threads", lambda threads: asked.append(threads))
    onnx = ServedModel(str(ner_folder), backend="onnx", threads=1)
    assert onnx.on_onnx and onnx.model.session.get_session_options().intra_op_num_threads == 1
    with serving(create_app(onnx, ServeSettings(threads=1))) as url:
        assert call(url + "/", {"inputs": SENTENCES[0]})[0] == 200
    with serving(create_app(str(ner_folder), ServeSettings(threads=1))) as url:
        assert call(url + "/", {"inputs": SENTENCES[0]})[0] == 200
    assert asked == [None, 1]


def test_serve_command_refuses_a_missing_model_clearly(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("textrnn serve: error:") and "missing" in err and "Traceback" not in err


@pytest.mark.parametrize("flags, expected", [
    (["--device", "cuda:99"], "is not available"),
    (["--backend", "onnx", "--device", "cuda"], "the onnx backend runs on the CPU"),
])
def test_serve_command_refuses_an_unusable_device_clearly(ner_folder, capsys, flags, expected):
    if flags[1] == "onnx":
        pytest.importorskip("onnxruntime")
    assert main(["serve", str(ner_folder), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("textrnn serve: error:") and expected in err and "Traceback" not in err


# -- the batcher alone, on a fake model (no HTTP, no torch) ------------------------------------------
def _with_batcher(scenario, run, **kwargs):
    async def main_():
        batcher = DynamicBatcher(run, **kwargs)
        batcher.start()
        try:
            return await scenario(batcher)
        finally:
            await batcher.close()

    return asyncio.run(main_())


def test_batcher_fills_batches_up_to_max_size_and_keeps_order():
    sizes = []

    def run(texts, params):
        sizes.append(len(texts))
        return [t.upper() + params["mark"] for t in texts]

    async def scenario(batcher):
        requests = [batcher.submit([f"t{i}"], {"mark": "!"}) for i in range(9)] + \
                   [batcher.submit(["a", "b"], {"mark": "?"})]
        return await asyncio.gather(*requests)

    answers = _with_batcher(scenario, run, max_batch_size=4, max_wait_ms=100)
    assert answers == [[f"T{i}!"] for i in range(9)] + [["A?", "B?"]]
    # 11 items: [4], [4], then t8 (!) and a, b (?) in one batch of two parameter groups
    assert sizes == [4, 4, 1, 2]


def test_batcher_waits_for_company_it_expects_and_never_past_max_wait():
    async def scenario(batcher):
        timings = []
        for texts in (["alone"], ["alone again"], ["a", "b", "c"], ["after three"]):
            started = time.perf_counter()
            await batcher.submit(texts, {})
            timings.append(time.perf_counter() - started)
        return timings

    lone, again, three, after = _with_batcher(scenario, lambda texts, params: texts, max_batch_size=64,
                                              max_wait_ms=300)
    assert lone < 0.1 and again < 0.1 and three < 0.1  # a lone client is not kept waiting
    assert 0.29 <= after < 1.0  # the last call took three items: wait (up to 300 ms) for as many again


def test_under_closed_loop_load_batches_fill_up():
    sizes = []

    def run(texts, params):
        sizes.append(len(texts))
        time.sleep(0.01)
        return texts

    async def scenario(batcher):
        async def client(i):
            for j in range(6):
                await batcher.submit([f"{i}-{j}"], {})
                await asyncio.sleep(0.002 * (i % 4))  # clients come back at different times

        await asyncio.gather(*(client(i) for i in range(16)))

    _with_batcher(scenario, run, max_batch_size=16, max_wait_ms=100)
    assert sum(sizes) == 96 and sizes.count(16) >= 4 and max(sizes) == 16


def test_event_loop_runs_on_while_the_model_computes():
    def slow(texts, params):
        time.sleep(0.4)  # blocks its thread, as a forward pass does
        return texts

    async def scenario(batcher):
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        await batcher.submit(["x"], {})
        task.cancel()
        return ticks

    assert _with_batcher(scenario, slow, max_batch_size=4, max_wait_ms=0) >= 15


def test_a_failing_group_fails_only_its_own_requests():
    def run(texts, params):
        if params["bad"]:
            raise ValueError("boom")
        return texts

    async def scenario(batcher):
        return await asyncio.gather(batcher.submit(["ok"], {"bad": False}), batcher.submit(["no"], {"bad": True}),
                                    return_exceptions=True)

    good, bad = _with_batcher(scenario, run, max_batch_size=8, max_wait_ms=20)
    assert good == ["ok"] and isinstance(bad, ValueError)


def test_parse_request_defaults_and_model_defaults():
    parsed = parse_request({"inputs": "x"}, TEXT_CLASSIFICATION, 10)
    assert parsed.single and parsed.texts == ["x"] and parsed.params == {"top_k": 1}
    multi = parse_request({"inputs": ["x"]}, TEXT_CLASSIFICATION, 10, defaults={"top_k": None})
    assert not multi.single and multi.params == {"top_k": None}
    asked = parse_request({"inputs": ["x"], "parameters": {"top_k": 2}}, TEXT_CLASSIFICATION, 10, {"top_k": None})
    assert asked.params == {"top_k": 2}
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(RequestError, match="top_k must be a whole number"):
            parse_request({"inputs": "x", "parameters": {"top_k": bad}}, TEXT_CLASSIFICATION, 10)
