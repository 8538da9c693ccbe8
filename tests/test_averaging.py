"""--average-weights: dev is scored and the model kept with an exponential moving average of the weights."""
import json

import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.errors import ConfigError
from textrnn.tasks.tagging import train_tagger
from textrnn.training import checkpoints as ckpt
from textrnn.training.averaging import WeightAverage
from tests.helpers import tagging_dataset
from tests.test_trainer import assert_same_weights, fresh_tagger, weights


def test_the_average_warms_up_then_follows_the_decay():
    net = torch.nn.Linear(2, 1)
    frozen = torch.nn.Parameter(torch.ones(3), requires_grad=False)
    net.register_parameter("frozen", frozen)
    with torch.no_grad():
        net.weight.fill_(1.0)
    avg = WeightAverage(net, decay=0.99)
    assert avg.names == ["weight", "bias"]  # frozen tensors are neither copied nor averaged
    with torch.no_grad():
        net.weight.fill_(2.0)
    avg.update(net)  # first step: decay min(0.99, 1/10) = 0.1
    assert torch.allclose(avg.state_dict()["weight"], torch.full((1, 2), 0.1 * 1.0 + 0.9 * 2.0))
    for _ in range(2000):
        avg.update(net)
    assert torch.allclose(avg.state_dict()["weight"], torch.full((1, 2), 2.0))


def test_applied_swaps_the_average_in_and_the_own_weights_back():
    net = torch.nn.Linear(2, 2)
    avg = WeightAverage(net, decay=0.5)
    own = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    after_step = {k: v.clone() for k, v in net.state_dict().items()}
    avg.update(net)
    with avg.applied(net) as m:
        inside = {k: v.clone() for k, v in m.state_dict().items()}
    expected = {k: 0.1 * own[k] + 0.9 * after_step[k] for k in own}  # warm-up decay 0.1 at the first step
    for k in own:
        assert torch.allclose(inside[k], expected[k]), k
        assert torch.equal(net.state_dict()[k], after_step[k]), k


def test_training_keeps_the_averaged_weights_and_resumes_exactly(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=4, batch_size=2, optimizer="sgd", lr=0.05, seed=3, average_decay=0.9)
    plain = fresh_tagger()
    train_tagger(plain, data, data, config.replace(average_decay=None))
    straight = fresh_tagger()
    train_tagger(straight, data, data, config, output_dir=tmp_path / "straight")
    assert any(not torch.equal(a, b) for a, b in zip(weights(plain).values(), weights(straight).values()))
    newest = ckpt.list_checkpoints(tmp_path / "straight")[-1]
    assert (newest / ckpt.AVERAGE_NAME).exists()

    interrupted = fresh_tagger()
    train_tagger(interrupted, data, data, config.replace(max_epochs=2), output_dir=tmp_path / "resumed")
    state = json.loads((ckpt.list_checkpoints(tmp_path / "resumed")[-1] / "trainer_state.json").read_text())
    assert state["average_updates"] == state["global_step"] > 0
    resumed = fresh_tagger()
    train_tagger(resumed, data, data, config, output_dir=tmp_path / "resumed", resume=True)
    assert_same_weights(weights(straight), weights(resumed))


def test_resuming_a_plain_run_with_averaging_is_refused(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=2, batch_size=2, seed=3)
    train_tagger(fresh_tagger(), data, data, config.replace(max_epochs=1), output_dir=tmp_path)
    with pytest.raises(ckpt.CheckpointError, match="without --average-weights"):
        train_tagger(fresh_tagger(), data, data, config.replace(average_decay=0.9), output_dir=tmp_path, resume=True)


def test_a_decay_outside_zero_and_one_names_the_flag():
    with pytest.raises(ConfigError, match="--average-weights"):
        TrainingConfig(average_decay=1.5)
