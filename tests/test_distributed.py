"""N processes train like one (accelerate's training_check, for textrnn): 2 CPU processes (gloo) at
batch b end with the weights of 1 process at batch 2b; dev scores are gathered, not repeated; every
process saves its part of a checkpoint, and a 2-process run resumes. About 20 s per task (the
processes are spawned fresh): the tagger runs by default, the classifier with the slow tests."""
import json
import os

import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.tasks.tagging import build_tagger, train_tagger
from textrnn.tasks.classification import build_classifier, train_classifier
from textrnn.training import checkpoints as ckpt
from tests.helpers import TINY_NER, TINY_SENTIMENT, classification_dataset, tagging_dataset

NER_ROWS = [(list(t), list(g)) for _ in range(5) for t, g in TINY_NER] + [(["Bonn"], ["B-LOC"])]  # 31: a short batch
TEXTS = TINY_SENTIMENT * 3 + TINY_SENTIMENT[:3]  # 27 texts


def _build(task):
    torch.manual_seed(0)
    if task == "ner":  # dropout off: the two runs must draw no random numbers that could differ
        return build_tagger(tagging_dataset(NER_ROWS), word_dim=8, hidden_size=8, char_dim=4, char_filters=4,
                            dropout=0.0), tagging_dataset(NER_ROWS), train_tagger
    return (build_classifier(classification_dataset(TEXTS), word_dim=8, hidden_size=8, dropout=0.0),
            classification_dataset(TEXTS), train_classifier)


def _config(task, batch_size, epochs):
    metric = "f1" if task == "ner" else "accuracy"
    return TrainingConfig(max_epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=0.05, momentum=0.9,
                          seed=7, metric=metric, clip_norm=None)


def _worker(task, out, epochs, resume):
    """Runs in each of the processes tests.launch starts."""
    from accelerate.state import PartialState

    torch.set_num_threads(1)
    model, data, train = _build(task)
    result = train(model, data, data, _config(task, 4, epochs), output_dir=out, resume=resume)
    state = PartialState()
    if state.is_main_process:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.model.state_dict().items()}, os.path.join(out, "final.safetensors"))
        with open(os.path.join(out, "history.json"), "w") as f:
            json.dump(result.history, f)
    state.wait_for_everyone()


def _launch(*args):
    from tests.launch import launch

    launch(_worker, args=args, num_processes=2)


@pytest.mark.parametrize("task", ["ner", pytest.param("classify", marks=pytest.mark.slow)])
def test_two_processes_at_b_train_like_one_at_2b(task, tmp_path):
    from safetensors.torch import load_file

    single, data, train = _build(task)
    one = train(single, data, data, _config(task, 8, 3), output_dir=tmp_path / "one")
    _launch(task, str(tmp_path / "two"), 2, False)  # interrupted after two epochs ...
    newest = ckpt.list_checkpoints(tmp_path / "two")[-1]
    assert {p.name for p in newest.iterdir()} >= {"rng-0.safetensors", "rng-1.safetensors"}  # every process saved
    _launch(task, str(tmp_path / "two"), 3, True)  # ... and resumed by two processes
    two = load_file(str(tmp_path / "two" / "final.safetensors"))
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    metric = "dev_f1" if task == "ner" else "dev_accuracy"
    assert [h[metric] for h in history] == pytest.approx([h[metric] for h in one.history])
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]  # written once, by the main process
