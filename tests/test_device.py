"""Inference with the model on a CUDA device: the same results as on the CPU, no device mixing.

CI has no GPU, so ``tests/fake_device.py`` makes one out of CPU tensors that fails, as CUDA does,
wherever an op combines them with CPU tensors. Issue 9: ``predict(..., with_scores=True)`` built its
gather index on the host and crashed on a GPU, while every CPU test passed. Where a real GPU is
present, the same checks also run on it (``*_on_real_cuda``).
"""
import contextlib
import dataclasses
import json
import threading

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils._python_dispatch import TorchDispatchMode

from textrnn import pipeline
from textrnn.tasks.classification import TextClassifier, build_classifier
from textrnn.decoding_torch import TorchCRFDecoder, TorchSoftmaxDecoder
from textrnn.tasks.tagging import SequenceTagger, build_tagger
from tests.fake_device import FakeCudaTensor, fake_cuda
from tests.helpers import (TINY_NER, TINY_SENTIMENT, assert_outputs_close, classification_dataset,
                           multilabel_dataset, tagging_dataset)

SENTENCES = [tokens for tokens, _ in TINY_NER] + [["Zorblat", "visited", "Parisian", "Genevans"], ["x"]]
TEXTS = ["John Smith lives in Paris.", "EU rejects German call. Mary went to New York City!",
         "Reuters", "Unseenword visited Genevatown, then Berlin.", "这部电影很好看"]
real_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# the helper itself -----------------------------------------------------------------------------
def test_fake_device_raises_where_cuda_would():
    with fake_cuda(devices=2):
        probs = torch.rand(2, 3, 4, device="cuda")  # (batch, seq, tags)
        assert isinstance(probs, FakeCudaTensor) and probs.device == torch.device("cuda", 0)
        index = torch.tensor([[0, 1, 2], [3, 0, 1]])  # built on the host, as tasks/tagging.py once did
        with pytest.raises(RuntimeError, match="same device, but got index is on cpu, different from other "
                                               "tensors on cuda:0 .* aten.gather"):
            probs.gather(2, index.unsqueeze(2))
        picked = probs.gather(2, index.to(probs.device).unsqueeze(2)).squeeze(2)  # (batch, seq)
        assert picked.tolist() == probs.cpu().gather(2, index.unsqueeze(2)).squeeze(2).tolist()
        with pytest.raises(RuntimeError, match="same device"):
            probs + torch.ones(4)
        with pytest.raises(RuntimeError, match="same device"):
            torch.cat([probs, torch.ones(2, 3, 4)], dim=-1)
        with pytest.raises(RuntimeError, match="same device"):
            probs + torch.ones(4, device="cuda:1")
        with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
            probs.numpy()
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            torch.zeros(1, device="cuda:2")
        out = torch.zeros(2, 3)
        with pytest.raises(RuntimeError, match="same device"):
            out[torch.tensor([0, 1])] = probs[:, :, 0]  # an index_put_ of device values into a host tensor
        lengths = torch.tensor([3, 1])
        with pytest.raises(RuntimeError, match="'lengths' argument should be a 1D CPU int64 tensor"):
            pack_padded_sequence(probs, lengths.to(probs.device), batch_first=True, enforce_sorted=False)
        # what CUDA allows: CPU scalars, CPU indices, copies between devices, host lengths
        assert (probs * torch.tensor(2.0)).device == probs.device
        assert probs[torch.tensor([1]), :, torch.tensor([0])].device == probs.device
        out[0] = probs[0, :, 0]
        assert out[0].tolist() == probs[0, :, 0].tolist()
        packed = pack_padded_sequence(probs, lengths, batch_first=True, enforce_sorted=False)
        assert packed.data.device == probs.device and packed.batch_sizes.device.type == "cpu"


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_rnns_on_the_fake_device_equal_the_cpu_exactly(rnn):
    torch.manual_seed(0)
    module = getattr(torch.nn, rnn.upper())(5, 4, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(3, 6, 5), torch.tensor([6, 2, 4])

    def outputs(inputs):
        with torch.inference_mode():
            return [module(inputs)[0], module(pack_padded_sequence(inputs, lengths, True, False))[0].data]

    expected = outputs(x)
    with fake_cuda():
        module.to("cuda")
        assert all(isinstance(p, FakeCudaTensor) for p in module.parameters())
        with pytest.raises(RuntimeError, match="not at the same device"):
            outputs(x)  # a host input to a device RNN
        got = outputs(x.to("cuda"))
        assert all(g.device.type == "cuda" for g in got)
        got = [g.cpu() for g in got]
        module.to("cpu")
    assert all(type(p) is torch.nn.Parameter for p in module.parameters())
    for g, e in zip(got, expected):
        assert torch.equal(g, e)


# taggers and classifiers -----------------------------------------------------------------------
def on_fake_device(task, outputs, device):
    """``outputs(task)`` with the model on the fake ``device``; the model ends back on the CPU."""
    with fake_cuda(devices=2):
        task.model.to(device)
        where = torch.device("cuda", torch.device(device).index or 0)  # "cuda" is the current device, 0
        tensors = list(task.model.parameters()) + list(task.model.buffers())
        assert all(isinstance(t, FakeCudaTensor) and t.device == where for t in tensors)
        try:
            return outputs(task)
        finally:
            task.model.to("cpu")


def on_real_device(task, outputs, device):
    if (torch.device(device).index or 0) >= torch.cuda.device_count():
        device = "cuda"
    task.model.to(device)
    try:
        return outputs(task)
    finally:
        task.model.to("cpu")




def with_subwords(task, buckets=500):
    """The same task with a fastText n-gram table for unknown words (random rows: no gensim needed)."""
    config = dataclasses.replace(task.config, subword_buckets=buckets)
    model = type(task.model)(config, ngrams=torch.randn(buckets, config.word_dim))
    model.load_state_dict(task.model.state_dict(), strict=False)
    model.eval()
    if isinstance(task, SequenceTagger):
        return SequenceTagger(model, task.words, task.chars, task.bigrams)
    return TextClassifier(model, task.words, task.bigrams)


TAGGERS = {  # name: (build_tagger settings, fastText subwords, device)
    "lstm-crf-cnn": (dict(rnn="lstm", use_crf=True, char_encoder="cnn"), False, "cuda"),
    "gru-softmax-charlstm": (dict(rnn="gru", use_crf=False, char_encoder="lstm"), False, "cuda:0"),
    "lstm-crf-bigrams-2layers": (dict(rnn="lstm", use_crf=True, char_encoder="none", bigrams=True,
                                      num_layers=2), False, "cuda"),
    "gru-crf-charlstm-subwords-cuda1": (dict(rnn="gru", use_crf=True, char_encoder="lstm"), True, "cuda:1"),
    "lstm-softmax-cnn-bigrams-subwords": (dict(rnn="lstm", use_crf=False, char_encoder="cnn", bigrams=True),
                                          True, "cuda"),
}


def make_tagger(name):
    settings, subwords, _ = TAGGERS[name]
    torch.manual_seed(0)
    tagger = build_tagger(tagging_dataset(), word_dim=16, hidden_size=16, char_dim=8, char_filters=8,
                          dropout=0.0, **settings)
    if subwords:
        tagger = with_subwords(tagger)
    with torch.no_grad():  # sharper emissions, so that random weights still tag entities
        tagger.model.proj.weight.mul_(8.0)
    return tagger


def tagger_outputs(tagger):
    ner = pipeline("ner", model=tagger, batch_size=2, device=tagger.device)
    return {
        "tags": tagger.predict(SENTENCES, batch_size=3),
        "scores": tagger.predict(SENTENCES, batch_size=3, with_scores=True),
        "entities": tagger.predict_entities(SENTENCES, batch_size=3),
        "pipeline": ner(TEXTS),
        "streamed": list(ner(iter(TEXTS), aggregation="none")),
        "evaluate": tagger.evaluate(tagging_dataset(), batch_size=4, report=True),
    }


@pytest.mark.parametrize("name", sorted(TAGGERS))
def test_tagger_inference_on_device_equals_cpu(name, monkeypatch):
    """On a device, decoding runs there in torch (textrnn.decoding_torch): the same tags and spans
    as numpy on the CPU, probabilities equal to rounding (float64 summed in another order)."""
    tagger = make_tagger(name)
    expected = tagger_outputs(tagger)
    assert sum(len(spans) for _, _, spans in expected["entities"]) > 3, "the check needs predicted entities"
    decoded_on = []
    for cls in (TorchCRFDecoder, TorchSoftmaxDecoder):
        original = cls.decode
        monkeypatch.setattr(cls, "decode", lambda self, emissions, *a, original=original:
                            decoded_on.append((emissions.device, threading.current_thread().name))
                            or original(self, emissions, *a))
    assert_outputs_close(on_fake_device(tagger, tagger_outputs, TAGGERS[name][2]), expected, 1e-12, rel_tol=1e-12)
    assert decoded_on and all(d.type == "cuda" for d, _ in decoded_on)
    # in the caller's thread on a GPU (a worker thread would fight it for the GIL: TaskModel.overlap_network)
    assert {thread for _, thread in decoded_on} == {threading.current_thread().name}
    decoded_on.clear()
    tagger.overlap = True  # one batch ahead: batch i + 1 queued on the device before batch i is read
    try:
        assert_outputs_close(on_fake_device(tagger, tagger_outputs, TAGGERS[name][2]), expected, 1e-12,
                             rel_tol=1e-12)
    finally:
        tagger.overlap = None
    assert decoded_on and all(d.type == "cuda" for d, _ in decoded_on)


def test_on_apple_mps_the_host_decodes(monkeypatch):
    """MPS has no float64 (pytorch#122602), which forward-backward needs: a model there decodes in
    numpy on the host by default, and forcing device decoding says why it cannot."""
    from textrnn.decoding import CRFDecoder
    from textrnn.errors import ConfigError
    from textrnn.utils import has_float64

    assert not has_float64("mps") and has_float64("cuda:1") and has_float64(torch.device("cpu"))
    tagger = make_tagger("lstm-crf-cnn")
    monkeypatch.setattr(SequenceTagger, "device", property(lambda self: torch.device("mps")))
    network, decoder = tagger.decoding()
    assert isinstance(decoder, CRFDecoder) and network == tagger.emission_scores
    tagger.device_decoding = True
    with pytest.raises(ConfigError, match="float64 on the model's device, which mps lacks"):
        tagger.decoding()
    tagger.device_decoding = False
    assert isinstance(tagger.decoding()[1], CRFDecoder)


@pytest.mark.parametrize("overlap", [None, True])
def test_on_a_cuda_build_results_are_read_only_after_their_event(overlap, monkeypatch):
    """decoding_torch's CUDA-only branch, which no CPU build takes: uploads pinned and
    non-blocking; each batch's results copied back non-blocking, then one event recorded on the
    device's current stream, synchronized before they are read. Stubs stand in for CUDA's pinned
    memory, streams and events; the fake device for the rest."""
    tagger = make_tagger("lstm-crf-cnn")
    expected = tagger.predict_entities(SENTENCES, batch_size=3)
    log = []

    class Event:
        def record(self, stream):
            log.append(f"record on {stream}")

        def synchronize(self):
            log.append("synchronize")

    original_to, original_numpy = torch.Tensor.to, torch.Tensor.numpy

    def to(self, *args, **kwargs):
        if kwargs.get("non_blocking"):
            log.append("copy back" if str(args[0]) == "cpu" else "upload")
        return original_to(self, *args, **kwargs)

    tagger.overlap = overlap
    with fake_cuda():
        tagger.model.to("cuda")
        try:
            monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
            monkeypatch.setattr(torch.cuda, "Event", Event)
            monkeypatch.setattr(torch.cuda, "current_stream", lambda device: f"the stream of {device}")
            monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: log.append("pin") or self)
            monkeypatch.setattr(torch.Tensor, "to", to)
            monkeypatch.setattr(torch.Tensor, "numpy", lambda self, *a: log.append("read") or original_numpy(self, *a))
            got = tagger.predict_entities(SENTENCES, batch_size=3)
        finally:
            monkeypatch.undo()
            tagger.overlap = None
            tagger.model.to("cpu")
    assert_outputs_close(got, expected, 1e-12, rel_tol=1e-12)
    batches = log.count("synchronize")
    assert batches == len(SENTENCES) // 3 + 1 and log.count("record on the stream of cuda:0") == batches
    assert log.count("pin") > 0 and log.count("upload") >= log.count("pin")  # (the fake's .to logs twice)
    # per batch: its copies back, then the event; later the wait, then the reads
    events = [e for e in log if e in ("copy back", "synchronize", "read") or e.startswith("record")]
    for i, e in enumerate(events):
        if e.startswith("record"):
            assert events[i - 1] == "copy back"
        if e == "read":  # every read follows a wait, with no new copies in between
            assert [x for x in events[:i] if x in ("synchronize", "copy back")][-1] == "synchronize"
    # one batch ahead, the next batch's copies are queued before a batch is waited for; serially, never
    ahead = any(a.startswith("record") and b == "copy back" for a, b in zip(events, events[1:]))
    assert ahead == bool(overlap)


@real_cuda
@pytest.mark.parametrize("name", sorted(TAGGERS))
def test_tagger_inference_on_real_cuda(name):
    tagger = make_tagger(name)
    expected = tagger_outputs(tagger)
    # cuDNN rounds through TF32 on recent GPUs by default: about 1e-4 relative, so allow 1e-3
    assert_outputs_close(on_real_device(tagger, tagger_outputs, TAGGERS[name][2]), expected, 1e-3, rel_tol=1e-3)
    tagger.overlap = True  # one batch ahead: pinned uploads, non-blocking copies back, CUDA events
    try:
        assert_outputs_close(on_real_device(tagger, tagger_outputs, TAGGERS[name][2]), expected, 1e-3,
                             rel_tol=1e-3)
    finally:
        tagger.overlap = None


MULTILABEL = [("great acting , dull story", ["acting", "story"]), ("great acting", ["acting"]),
              ("a dull story", ["story"]), ("nothing to say", [])]

CLASSIFIERS = {  # name: (build_classifier settings, multi-label, fastText subwords, device)
    "lstm-max": (dict(rnn="lstm", pooling="max"), False, False, "cuda"),
    "gru-last-bigrams": (dict(rnn="gru", pooling="last", bigrams=True), False, False, "cuda"),
    "lstm-mean-weighted-cuda1": (dict(rnn="lstm", pooling="mean", balanced_weights=True), False, False,
                                 "cuda:1"),
    "gru-attention-subwords": (dict(rnn="gru", pooling="attention", num_layers=2), False, True, "cuda"),
    "lstm-multilabel": (dict(rnn="lstm", pooling="max"), True, False, "cuda"),
}


def make_classifier(name):
    settings, multi_label, subwords, _ = CLASSIFIERS[name]
    data = multilabel_dataset(MULTILABEL, ["acting", "story"]) if multi_label else classification_dataset()
    torch.manual_seed(0)
    clf = build_classifier(data, word_dim=16, hidden_size=12, dropout=0.0, **settings)
    if subwords:
        clf = with_subwords(clf)
    texts = [t for t, _ in (MULTILABEL if multi_label else TINY_SENTIMENT)] + TEXTS

    def outputs(task):
        return {
            "proba": task.predict_proba(texts, batch_size=3).tolist(),
            "best": task.predict(texts, batch_size=3),
            "ranked": task.predict(texts, batch_size=3, top_k=None),
            "pipeline": pipeline("text-classification", model=task, batch_size=2, device=task.device)(texts),
            "evaluate": task.evaluate(data, batch_size=3),
        }

    return clf, outputs


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_inference_on_device_equals_cpu(name):
    clf, outputs = make_classifier(name)
    expected = outputs(clf)
    assert on_fake_device(clf, outputs, CLASSIFIERS[name][3]) == expected


@real_cuda
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_inference_on_real_cuda(name):
    clf, outputs = make_classifier(name)
    expected = outputs(clf)
    assert_outputs_close(on_real_device(clf, outputs, CLASSIFIERS[name][3]), expected, 1e-3, rel_tol=1e-3)


@pytest.mark.parametrize("where", ["fake", pytest.param("real", marks=real_cuda)])
def test_a_served_model_on_a_gpu_answers_as_on_the_cpu(where, tmp_path):
    """``textrnn serve --device cuda``'s model (``ServedModel`` loads without FastAPI, so this runs on
    a GPU machine that lacks it): the same entities as on the CPU, scores equal to rounding on the
    fake device and to TF32's on a real one; /info says where it runs."""
    from textrnn.serve.model import ServedModel

    folder = make_tagger("lstm-crf-cnn").save_pretrained(tmp_path / "ner")
    params = {"aggregation_strategy": "simple"}
    on_cpu = ServedModel(str(folder))
    expected = on_cpu.run(TEXTS, params)
    assert sum(map(len, expected)) > 0, "the check needs predicted entities"
    assert on_cpu.info()["device"] == "cpu"
    with fake_cuda() if where == "fake" else contextlib.nullcontext():
        served = ServedModel(str(folder), device="cuda")
        got = served.run(TEXTS, params)
        info = served.info()
        assert info["device"] == "cuda:0" and served.model.device == torch.device("cuda", 0)
    assert info["backend"] == "torch"
    tol = 1e-12 if where == "fake" else 1e-3
    assert_outputs_close(got, expected, tol, rel_tol=tol)


def test_the_command_line_on_a_device(tmp_path, capsys):
    """``textrnn predict/evaluate --device cuda:1``: saved models loaded straight onto the device."""
    from textrnn.cli import main

    ner = make_tagger("gru-crf-charlstm-subwords-cuda1").save_pretrained(tmp_path / "ner")
    clf = make_classifier("gru-last-bigrams")[0].save_pretrained(tmp_path / "clf")
    conll = tmp_path / "test.conll"
    conll.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(*row)) + "\n" for row in TINY_NER),
                     encoding="utf-8")
    text = tmp_path / "in.txt"
    text.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")

    def run(device):
        printed = []
        for argv in (["predict", ner, text], ["evaluate", ner, "--test", conll], ["predict", clf, text]):
            assert main([*map(str, argv), "--device", device]) == 0
            printed.append(capsys.readouterr().out)
        return printed

    def parsed(printed):  # JSON lines as values (scores compared to rounding), other lines as text
        return [[json.loads(line) if line.startswith("{") else line for line in out.splitlines()]
                for out in printed]

    expected = run("cpu")
    assert '"entity_group"' in expected[0]
    with fake_cuda(devices=2):
        assert_outputs_close(parsed(run("cuda:1")), parsed(expected), 1e-12, rel_tol=1e-12)


def test_a_device_model_is_an_ordinary_cpu_model_again_after_the_block():
    """Moved back inside the block, the model holds plain CPU tensors: later tests are unaffected."""
    torch.manual_seed(0)
    tagger = build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4, char_filters=4)
    is_available, device_count = torch.cuda.is_available, torch.cuda.device_count
    before = tagger.predict(SENTENCES, with_scores=True)
    on_fake_device(tagger, lambda t: t.predict(SENTENCES), "cuda")
    assert all(type(p) is torch.nn.Parameter and p.device.type == "cpu" for p in tagger.model.parameters())
    assert all(type(b) is torch.Tensor for b in tagger.model.buffers())
    assert tagger.predict(SENTENCES, with_scores=True) == before
    assert (torch.cuda.is_available, torch.cuda.device_count) == (is_available, device_count)  # restored
    assert torch.__future__.get_overwrite_module_params_on_conversion() is False


class _Float64Ops(TorchDispatchMode):
    """Records every op whose output is a float64 tensor."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outputs = out if isinstance(out, (tuple, list)) else [out]
        self.ops += [str(func) for t in outputs if isinstance(t, torch.Tensor) and t.dtype == torch.float64]
        return out


def test_training_and_host_decoding_make_no_float64_tensor_where_the_device_has_none(tmp_path, monkeypatch):
    """What a run on Apple's MPS meets: with ``has_float64`` False (as there), training (evaluations,
    the weight average, checkpoints) and prediction decoded on the host make no float64 torch tensor;
    on MPS each would crash. Here every tensor is on the CPU, so a float64 tensor kept on the host
    on purpose would fail this too: such code should say so, and be left out of the check."""
    from textrnn.config import TrainingConfig
    from textrnn.tasks.classification import train_classifier
    from textrnn.tasks.tagging import train_tagger

    config = TrainingConfig(max_epochs=2, batch_size=2, seed=1, average_decay=0.9)
    tagger, (clf, _) = make_tagger("lstm-crf-cnn"), make_classifier("lstm-max")
    for has in (True, False):
        monkeypatch.setattr("textrnn.training.trainer.has_float64", lambda device, has=has: has)
        with _Float64Ops() as seen:
            train_tagger(tagger, tagging_dataset(), tagging_dataset(), config, output_dir=tmp_path / f"t{has}")
            train_classifier(clf, classification_dataset(), classification_dataset(),
                             config.replace(metric="accuracy"), output_dir=tmp_path / f"c{has}")
            tagger.device_decoding = False
            tagger.predict_entities(SENTENCES, batch_size=3)
            clf.predict(TEXTS, batch_size=2)
        # where float64 exists, the loss totals are summed in it (the check sees them)
        assert bool(seen.ops) == has, seen.ops
