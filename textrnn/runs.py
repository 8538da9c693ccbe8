"""One run layer: set up, train, evaluate, save and report, for recipes and the ``textrnn`` command.

``run("ner", train, dev, tests, model_options=..., training=TrainingConfig(...), output_dir=...)``
takes plain values (no argparse Namespace). Under several processes (``torchrun``, ``accelerate
launch``) every process builds the same model and trains its share; caches are written by the main
process first; dev and test predictions are shared out and gathered; and the work that must happen
once (the model folder, results.json, the model card, the learning curves, the printed line,
removing checkpoints) happens once, on the main process, after a barrier.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .config import TrainingConfig
from .errors import TextrnnError
from .training.checkpoints import list_checkpoints, remove_checkpoints
from .training.trainer import TrainResult, Trainer, describe_stop, make_accelerator
from .utils import atomic_write_text

logger = logging.getLogger(__name__)

# per task: where its builder lives, and the test metrics worth a results.json key
TASKS = {
    "ner": ("textrnn.tasks.tagging", "build_tagger", ("f1", "strict_f1", "precision", "recall")),
    "classify": ("textrnn.tasks.classification", "build_classifier", ("accuracy", "macro_f1", "micro_f1")),
}
HF_TASK = {"ner": "token-classification", "classify": "text-classification"}


class FinishedRunError(TextrnnError):
    """``--resume`` asked of a run that already finished."""


def _task(name: str):
    import importlib

    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    module, build, metrics = TASKS[name]
    return getattr(importlib.import_module(module), build), metrics


def check_resume(output_dir, resume: bool) -> None:
    """Refuse to resume a run that finished: it would train afresh over the finished model."""
    out = Path(output_dir)
    if resume and not list_checkpoints(out) and (out / "results.json").exists():
        raise FinishedRunError(
            f"{out}: this run has finished (see {out / 'results.json'}); there is nothing to resume. "
            "To train again, choose a new --output-dir, or drop --resume to overwrite it.")


def train_model(task, train, dev, config: TrainingConfig, output_dir=None, resume: bool = False,
                accelerator=None, watch: Optional[Mapping[str, Any]] = None) -> TrainResult:
    """Train ``task.model`` on ``train``, selecting on ``dev``; the model ends with its best weights.
    ``watch``: other labelled sets scored at every evaluation and logged as ``name/metric`` (learning
    curves, time to a test score); they never select anything."""
    acc = accelerator or make_accelerator(config, output_dir)
    with acc.main_process_first():  # the datasets cache is written once, then read by the others
        data = task.encode_for_training(train)
    lengths = data["length"][:]

    def evaluate(model) -> Dict[str, Any]:
        metrics = task.evaluate(dev, batch_size=config.eval_batch_size, accelerator=acc)
        for name, data in (watch or {}).items():
            scores = task.evaluate(data, batch_size=config.eval_batch_size, accelerator=acc)
            metrics.update({f"{name}/{k}": v for k, v in scores.items() if isinstance(v, float)})
        return metrics

    trainer = Trainer(task.model, config, data, task.collate, lengths, evaluate, output_dir, acc)
    result = trainer.fit(resume=resume)
    task.model = acc.unwrap_model(trainer.model)
    return result


def run(task: str, train, dev, tests: Optional[Mapping[str, Any]] = None, *, model_options: Dict[str, Any],
        training: TrainingConfig, output_dir, resume: bool = False, recipe: Optional[str] = None,
        dataset: Optional[str] = None, command: Optional[str] = None, cpu: bool = False,
        watch_tests: bool = False) -> Optional[Dict]:
    """Build, train, test, save: the results dict on the main process (None on the others).
    ``watch_tests``: also score the test sets at every evaluation, for the logs only."""
    build, _ = _task(task)
    out = Path(output_dir)
    check_resume(out, resume)
    acc = make_accelerator(training, out, cpu=cpu)
    with acc.main_process_first():  # vectors parsed and cached once
        model = build(train, **model_options)
    result = train_model(model, train, dev, training, out, resume, acc, watch=tests if watch_tests else None)
    scores, seconds = {}, {}
    for name, data in (tests or {}).items():
        start = time.perf_counter()
        scores[name] = model.evaluate(data, batch_size=training.eval_batch_size, accelerator=acc)
        seconds[name] = time.perf_counter() - start
    acc.wait_for_everyone()
    results = None
    if acc.is_main_process:
        results = _finish(task, model, result, scores, seconds, tests or {}, training, out,
                          recipe=recipe, dataset=dataset, command=command, model_options=model_options,
                          processes=acc.num_processes, device=str(acc.device))
    acc.wait_for_everyone()
    acc.end_training()
    return results


def _finish(task: str, model, result: TrainResult, scores, seconds, tests, training: TrainingConfig, out: Path,
            *, recipe, dataset, command, model_options, processes: int, device: str) -> Dict[str, Any]:
    """The end of a run, once: model folder, results.json, plots, card, checkpoints gone, one line."""
    from .hub import write_model_card
    from .training.curves import plot_learning_curves

    _, keys = _task(task)
    model.save_pretrained(out)
    c = model.config
    embeddings = model_options.get("embeddings")
    results: Dict[str, Any] = {"recipe": recipe or f"textrnn train {task}", "task": HF_TASK[task], "rnn": c.rnn,
                               "hidden_size": c.hidden_size,
                               "embeddings": Path(embeddings).name if embeddings else "random"}
    if task == "ner":
        results.update(crf=c.use_crf, char_features=c.char_encoder, scheme=c.scheme)
    else:
        results.update(pooling=c.pooling, multi_label=c.multi_label)
    lexicon = model_options.get("lexicon")
    results.update(bigrams=bool(c.bigram_vocab_size), lexicon=Path(lexicon).name if lexicon else None)
    results.update({f"dev_{k}": round(result.best_metrics[k], 2) for k in keys if k in result.best_metrics})
    results.update(best_epoch=result.best_epoch, best_step=result.best_step, epochs_run=len(result.history),
                   steps=result.global_step, stopped=result.stopped)
    for name, metrics in scores.items():
        results.update({f"{name}_{k}": round(metrics[k], 2) for k in keys if k in metrics})
        unit = "sentences" if task == "ner" else "texts"
        results[f"{name}_{unit}_per_second"] = round(len(tests[name]) / max(seconds[name], 1e-9))
        if task == "classify":
            _classification_extras(metrics, out, name, recipe)
    results.update(train_seconds=round(result.train_seconds, 1), seed=training.seed, processes=processes,
                   device=device, mixed_precision=training.mixed_precision, output_dir=str(out))
    results["command"] = command or " ".join(["python"] + sys.argv)  # what to run to get these figures again
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    curves = plot_learning_curves(out, training.metric, lr_steps=training.schedule != "linear")
    main_test = next(iter(scores.values()), None)
    write_model_card(out, HF_TASK[task], dataset=dataset,
                     metrics={k: main_test[k] for k in keys if k in main_test} if main_test else None,
                     training={**training.to_dict(), "embeddings": results["embeddings"]},
                     curves=curves.name if curves else None)
    remove_checkpoints(out)
    logger.info("finished after %d epoch(s), %d steps: %s; best dev %s %.2f at epoch %g; model in %s",
                len(result.history), result.global_step, describe_stop(result.stopped, training), training.metric,
                result.best_score, result.best_epoch, out)
    print(json.dumps(results, ensure_ascii=False), flush=True)
    return results


def _classification_extras(metrics: Dict[str, Any], out: Path, name: str, recipe: Optional[str]) -> None:
    """Per-class scores as JSON and the confusion matrix as a PNG, beside the model."""
    from .training.metrics import plot_confusion_matrix

    atomic_write_text(out / f"{name}_metrics.json", json.dumps(metrics, indent=2) + "\n")
    if "confusion_matrix" in metrics:
        png = "confusion_matrix.png" if name == "test" else f"{name}_confusion_matrix.png"
        plot_confusion_matrix(metrics["confusion_matrix"], out / png, title=f"{recipe or 'textrnn'}: {name} set")


def hold_out(train, fraction: float = 0.1, seed: int = 42):
    """(train, validation): a fixed-seed share of ``train`` held out when no dev file is given."""
    split = train.train_test_split(test_size=fraction, seed=seed)
    return split["train"], split["test"]


def main_process_first(cpu: bool = False):
    """A context in which the main process goes first and the others follow: for reading corpora,
    whose Arrow cache the first reader writes and the rest reuse (a no-op in a single process)."""
    from accelerate import PartialState

    from .training.trainer import use_cpu

    return PartialState(cpu=use_cpu(cpu)).main_process_first()
