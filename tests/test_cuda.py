"""On a real GPU (skipped without one): every inference path gives what it gives on the CPU, and a
short training run works under bf16 autocast. Run on a lent GPU machine by bench/gpu_check.sh."""
import pytest
import torch

from textrnn import pipeline
from textrnn.config import TrainingConfig
from textrnn.tasks.classification import build_classifier, train_classifier
from textrnn.tasks.tagging import build_tagger, train_tagger
from tests.helpers import TINY_NER, classification_dataset, tagging_dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TEXTS = ["John Smith lives in Paris .", "The UN met in Geneva", "Mary went to New York City"]


@pytest.mark.parametrize("crf,chars", [(True, "cnn"), (False, "lstm")])
def test_tagger_inference_on_cuda_equals_cpu(crf, chars):
    torch.manual_seed(0)
    data = tagging_dataset()
    tagger = build_tagger(data, word_dim=16, hidden_size=16, char_encoder=chars, use_crf=crf)
    train_tagger(tagger, data, data, TrainingConfig(max_epochs=5, batch_size=2, optimizer="adam", lr=0.02))
    sentences = [t for t, _ in TINY_NER]
    on_cpu = (tagger.to("cpu").predict(sentences, with_scores=True), tagger.predict_entities(sentences),
              pipeline("ner", model=tagger)(TEXTS), tagger.evaluate(data)["f1"])
    tagger.to("cuda")
    assert tagger.device.type == "cuda"
    on_gpu = (tagger.predict(sentences, with_scores=True), tagger.predict_entities(sentences),
              pipeline("ner", model=tagger, device=0)(TEXTS), tagger.evaluate(data)["f1"])
    assert on_gpu[0][0] == on_cpu[0][0]
    assert on_gpu[3] == on_cpu[3]
    for gpu_entities, cpu_entities in zip(on_gpu[2], on_cpu[2]):
        assert [(e["entity_group"], e["start"], e["end"]) for e in gpu_entities] == \
               [(e["entity_group"], e["start"], e["end"]) for e in cpu_entities]
        assert [e["score"] for e in gpu_entities] == pytest.approx([e["score"] for e in cpu_entities], abs=1e-3)  # TF32 rounding on recent GPUs


def test_classifier_inference_on_cuda_equals_cpu():
    torch.manual_seed(0)
    data = classification_dataset()
    clf = build_classifier(data, word_dim=16, hidden_size=16)
    train_classifier(clf, data, data, TrainingConfig(max_epochs=3, batch_size=4, optimizer="adam", lr=0.01,
                                                     metric="accuracy"))
    texts = ["a wonderful film", "dull"]
    on_cpu = clf.to("cpu").predict_proba(texts)
    on_gpu = pipeline("sentiment-analysis", model=clf, device="cuda")(texts, top_k=None)
    got = [r["score"] for row in on_gpu for r in sorted(row, key=lambda r: r["label"])]
    assert got == pytest.approx(on_cpu.flatten().tolist(), abs=1e-3)  # TF32 rounding on recent GPUs


def test_training_on_cuda_with_bf16_autocast(tmp_path):
    torch.manual_seed(0)
    data = tagging_dataset()
    tagger = build_tagger(data, word_dim=16, hidden_size=16)
    config = TrainingConfig(max_epochs=30, batch_size=3, optimizer="adam", lr=0.02, mixed_precision="bf16",
                            save_every_steps=5)
    result = train_tagger(tagger, data, data, config, output_dir=tmp_path)
    assert tagger.device.type == "cuda" and result.best_score > 90
