"""The training loop: checkpoints are whole, and a run that dies resumes to the same result."""
import json

import torch

from textrnn.config import TrainingConfig
from textrnn.tasks.tagging import build_tagger, train_tagger
from tests.helpers import tagging_dataset


def fresh_tagger():
    torch.manual_seed(0)
    return build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4, char_filters=4, dropout=0.3)


def test_resumed_run_ends_exactly_where_an_uninterrupted_run_does(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=4, batch_size=2, optimizer="sgd", lr=0.05, seed=3)
    straight = fresh_tagger()
    train_tagger(straight, data, data, config, output_dir=tmp_path / "straight")

    interrupted = fresh_tagger()
    train_tagger(interrupted, data, data, config.replace(max_epochs=2), output_dir=tmp_path / "resumed")
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "trainer_state.json").read_text())
    assert state["epoch"] == 2
    resumed = fresh_tagger()  # a new process would rebuild the model from scratch, then resume
    result = train_tagger(resumed, data, data, config, output_dir=tmp_path / "resumed", resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3, 4]
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing the checkpoint leaves the previous one intact."""
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=1, batch_size=3, seed=1)
    train_tagger(fresh_tagger(), data, data, config, output_dir=tmp_path)
    before = (tmp_path / "checkpoint" / "trainer_state.json").read_text()

    from textrnn.training import trainer as trainer_module

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trainer_module, "save_file", crash)
    try:
        train_tagger(fresh_tagger(), data, data, config.replace(max_epochs=2), output_dir=tmp_path, resume=True)
    except OSError:
        pass
    assert (tmp_path / "checkpoint" / "trainer_state.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
