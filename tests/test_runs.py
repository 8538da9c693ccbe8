"""The run layer: one ending for recipes and the command line, done once under several processes."""
import json
import os

import pytest
import torch

from textrnn.config import TrainingConfig
from textrnn.runs import FinishedRunError, run
from tests.helpers import TINY_NER, tagging_dataset

TAGGER = dict(word_dim=8, hidden_size=8, char_dim=4, char_filters=4, dropout=0.0)
CONLL = "\n\n".join("\n".join(f"{t} {g}" for t, g in zip(tokens, tags)) for tokens, tags in TINY_NER) + "\n"


def _run(out, **overrides):
    data = tagging_dataset()
    settings = dict(model_options=TAGGER, training=TrainingConfig(max_epochs=2, batch_size=3, seed=1),
                    output_dir=out, recipe="unit", dataset=None)
    return run("ner", data, data, {"test": data}, **{**settings, **overrides})


def test_a_run_ends_with_a_model_card_curves_results_and_no_checkpoints(tmp_path, capsys):
    results = _run(tmp_path / "run")
    out = tmp_path / "run"
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert printed == [results]  # one line, the same as results.json
    assert json.loads((out / "results.json").read_text()) == results
    assert {"dev_f1", "test_f1", "test_strict_f1", "best_epoch", "steps", "stopped", "command"} <= results.keys()
    assert results["epochs_run"] == 2 and results["processes"] == 1
    card = (out / "README.md").read_text()
    assert "model-index" in card and "## Learning curves" in card and "learning_curves.png" in card
    from PIL import Image

    with Image.open(out / "learning_curves.png") as image:
        assert image.size[0] > 800
    assert not (out / "checkpoints").exists()
    from textrnn import load_model

    assert load_model(out).predict([["John", "lives", "in", "Paris"]])


def test_resuming_a_finished_run_is_refused_and_leaves_it_alone(tmp_path):
    _run(tmp_path / "run")
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(FinishedRunError, match=r"has finished .*new --output-dir"):
        _run(tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_the_command_line_trains_through_the_same_run_layer(tmp_path, capsys):
    from textrnn.cli import main

    (tmp_path / "train.conll").write_text(CONLL)
    out = tmp_path / "cli"
    args = ["train", "ner", "--train", str(tmp_path / "train.conll"), "--dev", str(tmp_path / "train.conll"),
            "--test", str(tmp_path / "train.conll"), "--word-dim", "8", "--hidden-size", "8", "--char-dim", "4",
            "--char-filters", "4", "--max-epochs", "2", "--batch-size", "3", "--output-dir", str(out)]
    assert main(args) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert results["command"].startswith("textrnn") and "test_f1" in results
    card = (out / "README.md").read_text()
    assert "model-index" in card and "## Learning curves" in card  # the same card as a recipe's
    assert main(args + ["--resume"]) == 2
    assert "has finished" in capsys.readouterr().err


def _worker(out):
    from accelerate.state import PartialState

    torch.set_num_threads(1)
    results = _run(out)
    with open(os.path.join(out + f".rank{PartialState().process_index}.json"), "w") as f:
        json.dump(results, f)


def test_under_two_processes_the_end_of_a_run_happens_once(tmp_path):
    from tests.launch import launch

    out = str(tmp_path / "run")
    launch(_worker, args=(out,), num_processes=2)
    main, other = (json.loads((tmp_path / f"run.rank{r}.json").read_text()) for r in (0, 1))
    assert other is None and main["processes"] == 2
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == main
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_torchrun_on_a_cpu_box_starts_two_cooperating_processes(tmp_path):
    """What the README tells CPU users to type: two ranks, one model folder, one results line."""
    import subprocess
    import sys

    from tests.launch import free_port

    (tmp_path / "train.conll").write_text(CONLL * 3)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("ACCELERATE_USE_CPU", None)  # torchrun alone, on a machine without a GPU, must suffice
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", free_port(),
               "-m", "textrnn.cli", "train", "ner", "--train", str(tmp_path / "train.conll"), "--word-dim", "8",
               "--hidden-size", "8", "--char-dim", "4", "--char-filters", "4", "--max-epochs", "2",
               "--batch-size", "2", "--threads", "1", "--output-dir", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["processes"] == 2
    assert json.loads((out / "results.json").read_text()) == lines[0]


def test_watched_test_sets_are_logged_at_every_evaluation_and_select_nothing(tmp_path):
    data = tagging_dataset()
    results = _run(tmp_path / "run", watch_tests=True)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("test/f1" in r and "dev_f1" in r for r in records) and len(records) == 2
    assert results["dev_f1"] == round(max(r["dev_f1"] for r in records), 2)
    assert data.num_rows == 6


def test_training_on_gensim_native_vectors_needs_trust_pickle(tmp_path, capsys):
    import numpy as np
    from gensim.models import KeyedVectors

    from textrnn.cli import main

    (tmp_path / "train.conll").write_text(CONLL)
    kv = KeyedVectors(vector_size=8)
    kv.add_vectors(["john", "paris", "mary"], np.ones((3, 8), dtype=np.float32))
    kv.save(str(tmp_path / "vectors.kv"))
    args = ["train", "ner", "--train", str(tmp_path / "train.conll"), "--embeddings", str(tmp_path / "vectors.kv"),
            "--hidden-size", "8", "--char-dim", "4", "--char-filters", "4", "--max-epochs", "1",
            "--output-dir", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and "textrnn embeddings convert" in err and "--trust-pickle" in err
    assert not (tmp_path / "run" / "config.json").exists()
    with pytest.warns(UserWarning, match="pickle"):
        assert main(args + ["--trust-pickle"]) == 0
