"""The training loop on `accelerate`: one CPU or many GPUs, the same code.

The loop knows nothing of the model: ``model(batch)`` returns the loss summed over the batch's
sentences (so DDP sees the forward pass), and the model's ``loss_reduction`` says whether the
objective is that sum ("sum") or its mean over the global batch ("mean"). Scaling each process's
loss accordingly makes N processes at batch b take exactly the steps of one process at batch N*b.
An ``evaluate(model) -> dict`` callable scores the development set; it must give every process the
same numbers (gather across processes), because every process decides on them when to stop.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..config import TrainingConfig
from ..errors import ConfigError
from . import checkpoints as ckpt
from ..utils import atomic_write_text, has_float64
from .averaging import WeightAverage
from .batching import BucketBatchSampler

logger = logging.getLogger(__name__)

METRICS_LOG = "metrics.jsonl"  # one line per evaluation
STEPS_LOG = "steps.jsonl"  # one line every log_every_steps steps


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    best_metrics: Dict[str, Any]
    history: List[Dict[str, Any]]
    train_seconds: float
    stopped: str  # why the loop ended: max_epochs, max_steps, patience, max_seconds
    global_step: int = 0
    best_step: int = 0


@dataclass
class _State:
    """Where the run is and what was best: everything a checkpoint adds to model and optimiser."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed within the current epoch
    global_step: int = 0
    best_epoch: int = 0
    best_step: int = 0
    best_score: float = -math.inf
    best_metrics: Dict[str, Any] = field(default_factory=dict)
    history: List[Dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    lr_scale: float = 1.0  # plateau schedule: halved after two evaluations without improvement
    plateau: int = 0
    stale: int = 0  # evaluations since the best one
    window: Dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "sentences": 0, "tokens": 0,
                                                              "seconds": 0.0})  # since the last evaluation
    global_batch_size: int = 0
    average_updates: int = 0  # steps folded into the weight average (--average-weights)


def build_optimizer(params, config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def use_cpu(cpu: bool = False) -> bool:
    """Whether processes run on the CPU: asked for (--cpu, ACCELERATE_USE_CPU=1), or several processes
    started by torchrun on a machine without a GPU, which accelerate would otherwise run as one each."""
    if cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return True
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def make_accelerator(config: TrainingConfig, output_dir=None, cpu: bool = False) -> Accelerator:
    """The run's Accelerator: mixed precision and trackers from the config. A tracker whose package
    is missing is an error here (accelerate itself only warns, and the run would log nowhere)."""
    from accelerate.tracking import filter_trackers

    project = str(output_dir) if output_dir is not None else None
    wanted = [t for t in config.report_to if t != "all"]
    try:
        found = {str(t.value if hasattr(t, "value") else t) for t in filter_trackers(wanted, project)}
    except ValueError as err:
        raise ConfigError(f"--report-to: {err}") from None
    missing = [t for t in wanted if t not in found]
    if missing:
        raise ConfigError(f"--report-to {' '.join(missing)}: not installed here (pip install {' '.join(missing)}); "
                          "metrics.jsonl and steps.jsonl in --output-dir are always written")
    _forget_other_precision(config.mixed_precision)
    return Accelerator(cpu=use_cpu(cpu), mixed_precision=config.mixed_precision,
                       log_with=list(config.report_to) or None, project_dir=project)


def _forget_other_precision(mixed_precision: str) -> None:
    """accelerate keeps one AcceleratorState per process and refuses an Accelerator with another
    mixed precision ("restart your runtime"). A second run in the same process (a notebook, a
    sweep, the tests) may ask for another one: drop the old state, keeping the distributed set-up
    (PartialState), as accelerate's own tests do between runs."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and str(AcceleratorState().mixed_precision) != mixed_precision:
        AcceleratorState._reset_state()


class Trainer:
    """``Trainer(model, config, data, collate, lengths, evaluate, output_dir).fit()`` -> TrainResult.

    ``data[indices]`` rows (a ``datasets.Dataset``, memory-mapped, or a list) become batches through
    ``collate``; ``lengths`` (tokens per row) drive the length-bucketed, process-sharded sampler.
    """

    def __init__(self, model: torch.nn.Module, config: TrainingConfig, data, collate: Callable,
                 lengths, evaluate: Callable[[torch.nn.Module], Dict[str, Any]],
                 output_dir: Optional[str] = None, accelerator: Optional[Accelerator] = None):
        self.config = c = config
        self.accelerator = acc = accelerator or make_accelerator(config, output_dir)
        set_seed(config.seed, device_specific=True)  # seed + process index: each process its own dropout
        self.reduction = getattr(model, "loss_reduction", "mean")
        optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], config)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.sampler = BucketBatchSampler(lengths, config.batch_size, shuffle=True, seed=config.seed,
                                          num_replicas=acc.num_processes, rank=acc.process_index)
        workers = config.loader_workers
        # a generator of its own: each new iterator draws a worker seed from it, not from the global
        # generator, whose state (dropout masks) checkpoints capture and a resumed run must replay
        self.loader = DataLoader(data, batch_sampler=self.sampler, collate_fn=collate, num_workers=workers,
                                 pin_memory=acc.device.type == "cuda", generator=torch.Generator().manual_seed(0))
        self.evaluate = evaluate
        self.output_dir = Path(output_dir) if output_dir else None
        if self.output_dir is not None and acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.state = _State(global_batch_size=config.batch_size * acc.num_processes)
        self.best_weights: Optional[Dict[str, torch.Tensor]] = None
        self.average = WeightAverage(acc.unwrap_model(self.model), c.average_decay) if c.average_decay else None
        self.steps_per_epoch = len(self.sampler)
        self.stopped: Optional[str] = None

    # learning rate ---------------------------------------------------------------------------
    def _lr(self) -> float:
        c, s = self.config, self.state
        if c.schedule == "inverse":
            factor = 1.0 / (1.0 + c.lr_decay * s.epoch)
        elif c.schedule == "linear":
            total = c.max_steps or c.max_epochs * self.steps_per_epoch
            factor = max(0.0, 1.0 - s.global_step / total)
        else:
            factor = 1.0  # constant, or plateau (which scales lr itself after evaluations)
        if c.warmup_steps and s.global_step < c.warmup_steps:
            factor *= (s.global_step + 1) / c.warmup_steps
        lr = c.lr * factor * s.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    # the loop --------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        acc, c = self.accelerator, self.config
        if resume:
            self._resume()
        elif self.output_dir is not None and acc.is_main_process:
            for name in (METRICS_LOG, STEPS_LOG):  # a fresh run, a fresh log
                (self.output_dir / name).unlink(missing_ok=True)
        if acc.trackers or acc.log_with:
            acc.init_trackers(self.output_dir.name if self.output_dir else "textrnn", config=_flat(c.to_dict()))
        s = self.state
        while not self._stop_reason():
            self._train_epoch()
        if self.best_weights is not None:
            acc.unwrap_model(self.model).load_state_dict(self.best_weights)
        logger.info("best dev %s %.2f at epoch %g (step %d); trained %.0f s in %d steps; stopped: %s",
                    c.metric, s.best_score, s.best_epoch, s.best_step, s.train_seconds, s.global_step,
                    describe_stop(self.stopped, c))
        return TrainResult(s.best_epoch, s.best_score, s.best_metrics, s.history, s.train_seconds, self.stopped,
                           s.global_step, s.best_step)

    def _stop_reason(self) -> Optional[str]:
        """Why to stop now, or None; derived from the state, so a resumed run decides as the first would.
        Each process times its own steps: the main process's clock decides for all of them."""
        c, s = self.config, self.state
        reason = None
        if s.epoch >= c.max_epochs:
            reason = "max_epochs"
        elif c.max_steps is not None and s.global_step >= c.max_steps:
            reason = "max_steps"
        elif c.patience and s.history and s.stale >= c.patience:
            reason = "patience"
        elif c.max_seconds and s.history and s.train_seconds >= c.max_seconds:
            reason = "max_seconds"
        if self.accelerator.num_processes > 1:
            reason = broadcast_object_list([reason])[0]
        self.stopped = reason
        return reason

    def _train_epoch(self) -> None:
        """One epoch, or its rest after a mid-epoch resume; it ends early when an evaluation says stop."""
        acc, c, s = self.accelerator, self.config, self.state
        self.sampler.set_epoch(s.epoch, start=s.step)
        self.model.train()
        device, world = acc.device, acc.num_processes
        bar = tqdm(total=self.steps_per_epoch, initial=s.step, desc=f"epoch {s.epoch + 1}/{c.max_epochs}",
                   leave=False, disable=True if not acc.is_local_main_process else None, dynamic_ncols=True)
        running = torch.zeros((), device=device)  # summed on the device: no host sync every step
        interval = [0.0, 0]  # loss and sentences since the last steps.jsonl line
        start = time.perf_counter()
        for batch in self.loader:
            lr = self._lr()
            s.window["tokens"] += int(batch["lengths"].sum())
            s.window["sentences"] += batch["lengths"].numel()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            loss = self.model(batch)  # summed over this process's sentences
            scale = world if self.reduction == "sum" else world / self.sampler.global_size(s.step)
            self.optimizer.zero_grad(set_to_none=True)
            acc.backward(loss * scale)  # DDP averages over processes: the 1-process objective
            if c.clip_norm:
                acc.clip_grad_norm_(self.model.parameters(), c.clip_norm)
            self.optimizer.step()
            if self.average is not None:
                self.average.update(acc.unwrap_model(self.model))
            running += loss.detach().float()
            interval[1] += batch["lengths"].numel()
            s.step += 1
            s.global_step += 1
            bar.update(1)
            end_of_epoch = s.step == self.steps_per_epoch
            at_max = c.max_steps is not None and s.global_step >= c.max_steps
            evaluate = (at_max or (c.eval_every_steps and s.global_step % c.eval_every_steps == 0)
                        or (end_of_epoch and (not c.eval_every_steps or s.epoch + 1 >= c.max_epochs)))
            save = evaluate or end_of_epoch or (c.save_every_steps and s.global_step % c.save_every_steps == 0)
            if s.global_step % c.log_every_steps == 0 or save:
                loss_sum = float(running)  # one host sync per log interval, not per step
                running.zero_()
                s.window["loss"] += loss_sum
                interval[0] += loss_sum
                now = time.perf_counter()
                s.window["seconds"] += now - start
                s.train_seconds += now - start
                start = now
                if s.global_step % c.log_every_steps == 0:
                    self._log_step(interval[0] / max(interval[1], 1), lr)
                    interval = [0.0, 0]
            if evaluate:
                self._evaluate(lr, end_of_epoch)
            if save:
                self._checkpoint(end_of_epoch)
                start = time.perf_counter()
            if evaluate and self._stop_reason():
                break
            self.model.train()
        bar.close()

    def _log_step(self, loss: float, lr: float) -> None:
        s = self.state
        record = {"step": s.global_step, "epoch": round(s.epoch + s.step / self.steps_per_epoch, 4), "lr": lr,
                  "train_loss": loss}
        self._append(STEPS_LOG, record)
        if self.accelerator.log_with:
            self.accelerator.log({"train/loss": loss, "train/lr": lr}, step=s.global_step)

    def _evaluate(self, lr: float, end_of_epoch: bool) -> None:
        """Score dev, keep the best weights, log, and decide (the same on every process) whether to stop."""
        acc, c, s = self.accelerator, self.config, self.state
        exact = torch.float64 if has_float64(acc.device) else torch.float32  # MPS: exact up to 2**24 tokens
        totals = torch.tensor([s.window["loss"], s.window["sentences"], s.window["tokens"]], dtype=exact,
                              device=acc.device)
        if acc.num_processes > 1:
            totals = acc.reduce(totals, reduction="sum")
        loss, sentences, tokens = totals.tolist()
        seconds = max(s.window["seconds"], 1e-9)
        model = acc.unwrap_model(self.model)
        with self._scored(model):
            metrics = self.evaluate(model)
            score = float(metrics[c.metric])
            improved = score > s.best_score
            if improved:  # the weights that were scored are the ones kept
                self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        epoch = s.epoch + 1 if end_of_epoch else round(s.epoch + s.step / self.steps_per_epoch, 4)
        record = {"epoch": epoch, "step": s.global_step, "lr": lr, "train_loss": loss / max(sentences, 1),
                  "epoch_seconds": round(seconds, 2), "train_tokens_per_second": round(tokens / seconds),
                  "train_seconds": round(s.train_seconds, 2)}
        # "name/metric" keys are other sets watched during training (never used to select): kept as named
        record.update({k if "/" in k else f"dev_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        if improved:
            s.best_score, s.best_epoch, s.best_step, s.best_metrics = score, epoch, s.global_step, dict(metrics)
            s.stale = s.plateau = 0
        else:
            s.stale += 1
            s.plateau += 1
            if c.schedule == "plateau" and s.plateau >= 2:
                s.lr_scale *= 0.5
                s.plateau = 0
        s.history.append(record)
        s.window = {"loss": 0.0, "sentences": 0, "tokens": 0, "seconds": 0.0}
        logger.info("epoch %g, step %d: loss %.4f, dev %s %.2f%s, %.0f s, %s tokens/s", epoch, s.global_step,
                    record["train_loss"], c.metric, score, " (best)" if improved else "",
                    record["epoch_seconds"], f"{record['train_tokens_per_second']:,}")
        self._append(METRICS_LOG, record)
        if acc.log_with:
            values = {f"dev/{k[4:]}": v for k, v in record.items() if k.startswith("dev_")}
            acc.log({**values, "train/epoch_loss": record["train_loss"]}, step=s.global_step)

    def _scored(self, model):
        """The weights dev is scored with: the weight average where there is one, else the model's own."""
        return self.average.applied(model) if self.average is not None else nullcontext(model)

    def _append(self, name: str, record: Dict[str, Any]) -> None:
        if self.output_dir is not None and self.accelerator.is_main_process:
            with open(self.output_dir / name, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    # checkpoints -----------------------------------------------------------------------------
    def _checkpoint(self, end_of_epoch: bool) -> None:
        s = self.state
        if end_of_epoch:
            s.epoch, s.step = s.epoch + 1, 0
        if self.output_dir is None:
            return
        if self.average is not None:
            s.average_updates = self.average.updates
        ckpt.save_checkpoint(self.accelerator, self.output_dir, s.global_step, asdict(s), self.best_weights,
                             self.config.keep_checkpoints,
                             average=self.average.state_dict() if self.average is not None else None)

    def _rewind_logs(self) -> None:
        """The logs say what the checkpoint holds: lines written after it (by the run that died) go."""
        if self.output_dir is None or not self.accelerator.is_main_process:
            return
        atomic_write_text(self.output_dir / METRICS_LOG, _jsonl(self.state.history))
        steps = self.output_dir / STEPS_LOG
        if steps.exists():
            kept = [json.loads(line) for line in steps.read_text(encoding="utf-8").splitlines() if line.strip()]
            atomic_write_text(steps, _jsonl(r for r in kept if r["step"] <= self.state.global_step))

    def _resume(self) -> None:
        acc = self.accelerator
        folder = ckpt.usable_checkpoint(self.output_dir, acc.num_processes) if self.output_dir else None
        if folder is None:
            logger.info("no checkpoint to resume from in %s; starting afresh", self.output_dir)
            return
        saved, best, average = ckpt.load_checkpoint(acc, folder, acc.unwrap_model(self.model))
        state = _State(**saved)
        if self.average is not None:
            if average is None:
                raise ckpt.CheckpointError(f"{folder}: written by a run without --average-weights; resume with "
                                           "the interrupted run's settings")
            self.average.load_state_dict(average, state.average_updates)
        if state.step and state.global_batch_size != self.state.global_batch_size:
            raise ckpt.CheckpointError(
                f"{folder}: interrupted mid-epoch with a global batch of {state.global_batch_size} sentences; "
                f"this run has {self.state.global_batch_size} (batch size x processes). Resume with the same "
                "--batch-size and number of processes.")
        self.state = state
        self._rewind_logs()
        if best is not None:
            device = acc.device
            self.best_weights = {k: v.to(device) for k, v in best.items()}
        logger.info("resumed from %s: epoch %d, step %d (best dev %.2f at epoch %d)", folder.name,
                    state.epoch + 1, state.global_step, state.best_score, state.best_epoch)


def _jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def describe_stop(stopped: str, c: TrainingConfig) -> str:
    """Why a run stopped, in the words of its flags."""
    return {"max_epochs": f"reached --max-epochs {c.max_epochs}", "max_steps": f"reached --max-steps {c.max_steps}",
            "patience": f"no better dev {c.metric} in {c.patience} evaluations (--patience)",
            "max_seconds": f"training time passed --max-minutes {(c.max_seconds or 0) / 60:g}"}.get(stopped, stopped)


def _flat(config: Dict[str, Any]) -> Dict[str, Any]:
    """Tracker-friendly hyperparameters: scalars and strings only."""
    return {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in config.items()
            if v is not None}
