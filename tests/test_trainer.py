"""The training loop: whole checkpoints, exact resumption, clear errors for damaged ones, schedules."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.tasks.tagging import build_tagger, train_tagger
from textrnn.training import checkpoints as ckpt
from tests.helpers import tagging_dataset

REPO = Path(__file__).resolve().parents[1]


def fresh_tagger(**overrides):
    torch.manual_seed(0)
    settings = dict(word_dim=8, hidden_size=8, char_dim=4, char_filters=4, dropout=0.3)
    return build_tagger(tagging_dataset(), **{**settings, **overrides})


def weights(tagger):
    return {k: v.clone() for k, v in tagger.model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resumed_run_ends_exactly_where_an_uninterrupted_run_does(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=4, batch_size=2, optimizer="sgd", lr=0.05, seed=3)
    straight = fresh_tagger()
    train_tagger(straight, data, data, config, output_dir=tmp_path / "straight")

    interrupted = fresh_tagger()
    train_tagger(interrupted, data, data, config.replace(max_epochs=2), output_dir=tmp_path / "resumed")
    newest = ckpt.list_checkpoints(tmp_path / "resumed")[-1]
    assert json.loads((newest / "trainer_state.json").read_text())["epoch"] == 2
    resumed = fresh_tagger()  # a new process would rebuild the model from scratch, then resume
    result = train_tagger(resumed, data, data, config, output_dir=tmp_path / "resumed", resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert_same_weights(weights(straight), weights(resumed))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing a checkpoint leaves the previous one intact and no temporary folder."""
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=1, batch_size=3, seed=1)
    train_tagger(fresh_tagger(), data, data, config, output_dir=tmp_path)
    (before,) = ckpt.list_checkpoints(tmp_path)
    state_before = (before / "trainer_state.json").read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_rng", crash)
    with pytest.raises(OSError, match="disk full"):
        train_tagger(fresh_tagger(), data, data, config.replace(max_epochs=2), output_dir=tmp_path, resume=True)
    assert ckpt.list_checkpoints(tmp_path) == [before]
    assert (before / "trainer_state.json").read_text() == state_before
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=3, batch_size=2, seed=1, save_every_steps=1, keep_checkpoints=2)
    train_tagger(fresh_tagger(), data, data, config, output_dir=tmp_path)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-00000008", "step-00000009"]


# mid-epoch kill -9 and resume ----------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, torch
    from safetensors.torch import save_file
    torch.set_num_threads(1)
    sys.path.insert(0, {repo!r})
    from tests.helpers import tagging_dataset, TINY_NER
    from textrnn.config import TrainingConfig
    from textrnn.tasks.tagging import build_tagger, train_tagger
    rows = [(list(t), list(g)) for _ in range(40) for t, g in TINY_NER]  # 240 sentences, 60 steps an epoch
    data = tagging_dataset(rows)
    torch.manual_seed(0)
    tagger = build_tagger(data, word_dim=8, hidden_size=8, char_dim=4, char_filters=4, dropout=0.3)
    config = TrainingConfig(max_epochs=3, batch_size=4, lr=0.05, seed=5, save_every_steps=7, log_every_steps=5)
    train_tagger(tagger, data, data.select(range(12)), config, output_dir=sys.argv[1], resume=sys.argv[2] == "1")
    save_file({{k: v.contiguous() for k, v in tagger.model.state_dict().items()}}, sys.argv[1] + "/final.safetensors")
""")


def _child(script, out, resume):
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen([sys.executable, str(script), str(out), "1" if resume else "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO)))
    straight = _child(script, tmp_path / "straight", resume=False)
    assert straight.wait(timeout=300) == 0, straight.stderr.read().decode()[-2000:]

    killed = tmp_path / "killed"
    proc = _child(script, killed, resume=False)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step-00000014").exists():  # past the first mid-epoch checkpoint
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    newest = ckpt.list_checkpoints(killed)[-1]
    state = json.loads((newest / "trainer_state.json").read_text())
    assert state["step"] != 0 and state["epoch"] == 0, state  # killed in the middle of the first epoch
    resumed = _child(script, killed, resume=True)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    a, b = load_file(str(tmp_path / "straight" / "final.safetensors")), load_file(str(killed / "final.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    evals = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in evals] == [1, 2, 3]


# damaged checkpoints --------------------------------------------------------------------------------
@pytest.fixture
def interrupted_run(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=2, batch_size=3, seed=1, keep_checkpoints=1)
    train_tagger(fresh_tagger(), data, data, config.replace(max_epochs=1), output_dir=tmp_path)
    return tmp_path, data, config


def _resume(run_dir, data, config, tagger=None):
    return train_tagger(tagger or fresh_tagger(), data, data, config, output_dir=run_dir, resume=True)


@pytest.mark.parametrize("damage,where", [
    (lambda f: f.joinpath("accelerate", "model.safetensors").write_bytes(
        f.joinpath("accelerate", "model.safetensors").read_bytes()[:100]), "model.safetensors"),
    (lambda f: f.joinpath("accelerate", "optimizer.bin").write_bytes(
        f.joinpath("accelerate", "optimizer.bin").read_bytes()[:50]), "optimizer.bin"),
    (lambda f: f.joinpath("trainer_state.json").write_text("{ not json"), "trainer_state.json"),
    (lambda f: f.joinpath("rng-0.safetensors").write_bytes(b"garbage"), "rng-0.safetensors"),
])
def test_a_damaged_checkpoint_is_a_clear_error_naming_the_file(interrupted_run, damage, where):
    run_dir, data, config = interrupted_run
    damage(ckpt.list_checkpoints(run_dir)[-1])
    with pytest.raises(ckpt.CheckpointError, match=rf"{where}.*(damaged|unreadable)") as err:
        _resume(run_dir, data, config)
    assert "Delete the folder to train afresh" in str(err.value)


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=3, batch_size=3, seed=1, keep_checkpoints=2)
    straight = fresh_tagger()
    train_tagger(straight, data, data, config, output_dir=tmp_path / "straight")
    train_tagger(fresh_tagger(), data, data, config.replace(max_epochs=2), output_dir=tmp_path / "run")
    older, newest = ckpt.list_checkpoints(tmp_path / "run")
    (newest / "trainer_state.json").write_text("{}")
    resumed = fresh_tagger()
    with caplog.at_level("WARNING"):
        _resume(tmp_path / "run", data, config, resumed)
    assert "resuming from the older" in caplog.text and older.name in caplog.text
    assert_same_weights(weights(straight), weights(resumed))  # epoch 2 was trained again, identically


def test_resuming_with_another_architecture_says_what_differs(interrupted_run):
    run_dir, data, config = interrupted_run
    with pytest.raises(ckpt.CheckpointError, match=r"different model .*is \(\d+, \d+\) there.*same model settings"):
        _resume(run_dir, data, config, fresh_tagger(hidden_size=12))


# schedules and stopping -------------------------------------------------------------------------------
def lrs(tmp_path, **settings):
    data = tagging_dataset()
    config = TrainingConfig(batch_size=2, seed=1, log_every_steps=1, **settings)
    train_tagger(fresh_tagger(), data, data, config, output_dir=tmp_path)
    return [json.loads(line)["lr"] for line in (tmp_path / "steps.jsonl").read_text().splitlines()]


def test_learning_rate_schedules(tmp_path):
    assert lrs(tmp_path / "inverse", max_epochs=3, lr=0.1, lr_decay=0.5, schedule="inverse") == pytest.approx(
        [0.1] * 3 + [0.1 / 1.5] * 3 + [0.1 / 2] * 3)
    assert lrs(tmp_path / "linear", max_epochs=2, lr=0.6, schedule="linear") == pytest.approx(
        [0.6 * (1 - k / 6) for k in range(6)])
    assert lrs(tmp_path / "warmup", max_epochs=2, lr=0.4, schedule="constant", warmup_steps=4) == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.4, 0.4])


def test_patience_stops_after_evaluations_without_improvement(tmp_path):
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=30, batch_size=2, lr=1e-9, optimizer="sgd", seed=1, patience=2)
    result = train_tagger(fresh_tagger(), data, data, config, output_dir=tmp_path)
    assert result.stopped == "patience"
    assert len(result.history) == result.best_epoch + 2


def test_max_seconds_and_max_steps_stop_the_run(tmp_path, monkeypatch):
    data = tagging_dataset()
    result = train_tagger(fresh_tagger(), data, data, TrainingConfig(max_epochs=30, batch_size=2, max_steps=7))
    assert (result.stopped, result.global_step) == ("max_steps", 7)
    assert result.history[-1]["step"] == 7  # the last, mid-epoch step was evaluated too
    from textrnn.training import trainer

    clock = iter(range(0, 10**6, 10))  # every reading of the clock advances 10 s
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: next(clock))
    result = train_tagger(fresh_tagger(), data, data, TrainingConfig(max_epochs=30, batch_size=2, max_seconds=60))
    assert result.stopped == "max_seconds" and len(result.history) < 30


# trackers ---------------------------------------------------------------------------------------------
def test_trackers_receive_losses_and_dev_scores_and_a_missing_one_is_an_error(tmp_path):
    from accelerate import Accelerator
    from accelerate.tracking import GeneralTracker

    from textrnn.errors import ConfigError
    from textrnn.training.trainer import make_accelerator

    class Recorder(GeneralTracker):
        name, requires_logging_directory, main_process_only = "recorder", False, True

        def __init__(self):
            super().__init__()
            self.config, self.logged = None, []

        @property
        def tracker(self):
            return self

        def store_init_configuration(self, values):
            self.config = values

        def log(self, values, step=None, **kwargs):
            self.logged.append((step, dict(values)))

    recorder = Recorder()
    data = tagging_dataset()
    config = TrainingConfig(max_epochs=2, batch_size=2, seed=1, log_every_steps=1)
    train_tagger(fresh_tagger(), data, data, config, output_dir=tmp_path, accelerator=Accelerator(log_with=[recorder]))
    assert recorder.config["batch_size"] == 2
    assert [step for step, values in recorder.logged if "train/loss" in values] == [1, 2, 3, 4, 5, 6]
    assert [step for step, values in recorder.logged if "dev/f1" in values] == [3, 6]
    with pytest.raises(ConfigError, match="--report-to.*definitely-not-a-tracker"):
        make_accelerator(TrainingConfig(report_to=("definitely-not-a-tracker",)))
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
        with pytest.raises(ConfigError, match="--report-to tensorboard: not installed here"):
            make_accelerator(TrainingConfig(report_to=("tensorboard",)), output_dir=tmp_path)


def test_a_second_run_in_one_process_may_use_another_mixed_precision():
    """accelerate keeps one state per process and refused the second run's Accelerator ("restart your
    runtime"), seen on a GPU: a sweep or notebook that trains in fp32 and then in bf16 must work."""
    data = tagging_dataset()
    for precision in ("no", "bf16", "no"):
        tagger = fresh_tagger()
        result = train_tagger(tagger, data, data, TrainingConfig(max_epochs=1, batch_size=4, optimizer="adam",
                                                                 lr=0.01, mixed_precision=precision))
        assert result.stopped == "max_epochs" and len(result.history) == 1
