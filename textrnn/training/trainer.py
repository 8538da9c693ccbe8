"""The training loop on `accelerate`: one CPU or many GPUs, the same code.

The loop knows nothing of the model: ``model(batch)`` returns the loss (so DDP sees the forward
pass), and an ``evaluate(model) -> dict`` callable scores the development set after each epoch.
Each epoch ends with a checkpoint written whole or not at all, so a run that dies resumes.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..config import TrainingConfig
from ..utils import atomic_directory, atomic_write_text

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    best_metrics: Dict[str, Any]
    history: List[Dict[str, Any]]
    train_seconds: float
    stopped: str  # why the loop ended: max_epochs, patience, max_seconds


@dataclass
class _State:
    """What a checkpoint adds to the model and optimiser: where the run was and what was best."""

    epoch: int = 0
    best_epoch: int = 0
    best_score: float = -math.inf
    best_metrics: Dict[str, Any] = field(default_factory=dict)
    history: List[Dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0


def remove_checkpoint(output_dir) -> None:
    """Drop a run's resume checkpoint once its finished model is safely saved."""
    shutil.rmtree(Path(output_dir) / CHECKPOINT, ignore_errors=True)


def build_optimizer(params, config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


class Trainer:
    """``Trainer(model, config, train_loader, evaluate, output_dir).fit()`` -> TrainResult."""

    def __init__(self, model: torch.nn.Module, config: TrainingConfig, train_loader,
                 evaluate: Callable[[torch.nn.Module], Dict[str, Any]],
                 output_dir: Optional[str] = None, accelerator: Optional[Accelerator] = None):
        self.config = config
        self.accelerator = accelerator or Accelerator()
        set_seed(config.seed)
        optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], config)
        self.model, self.optimizer, self.loader = self.accelerator.prepare(model, optimizer, train_loader)
        self.evaluate = evaluate
        self.output_dir = Path(output_dir) if output_dir else None
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.state = _State()
        self.best_weights: Optional[Dict[str, torch.Tensor]] = None
        self.steps_per_epoch = len(self.loader)
        self._lr_scale = 1.0  # plateau schedule: halved after two epochs without improvement
        self._plateau = 0

    # learning rate ---------------------------------------------------------------------------
    def _lr_factor(self, epoch: int, step: int) -> float:
        c = self.config
        if c.schedule == "inverse":
            return 1.0 / (1.0 + c.lr_decay * epoch)
        if c.schedule == "linear":
            total = c.max_epochs * self.steps_per_epoch
            return max(0.0, 1.0 - (epoch * self.steps_per_epoch + step) / total)
        return 1.0  # constant, or plateau (which scales lr itself in _after_epoch)

    def _set_lr(self, epoch: int, step: int) -> float:
        lr = self.config.lr * self._lr_factor(epoch, step) * self._lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    # the loop --------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        if resume:
            self._load_checkpoint()
        elif self.output_dir is not None and self.accelerator.is_main_process:
            (self.output_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run, a fresh log
        c, acc = self.config, self.accelerator
        stopped = "max_epochs"
        while self.state.epoch < c.max_epochs:
            epoch = self.state.epoch
            record = self._train_epoch(epoch)
            metrics = self.evaluate(acc.unwrap_model(self.model))
            record.update({f"dev_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
            self._after_epoch(epoch, metrics, record)
            if c.patience and epoch + 1 - self.state.best_epoch >= c.patience:
                stopped = "patience"
                break
            if c.max_seconds and self.state.train_seconds >= c.max_seconds:
                stopped = "max_seconds"
                break
        if self.best_weights is not None:
            acc.unwrap_model(self.model).load_state_dict(self.best_weights)
        s = self.state
        logger.info("best dev %s %.2f at epoch %d; trained %.0f s (%s)", c.metric, s.best_score,
                    s.best_epoch, s.train_seconds, stopped)
        return TrainResult(s.best_epoch, s.best_score, s.best_metrics, s.history, s.train_seconds, stopped)

    def _train_epoch(self, epoch: int) -> Dict[str, Any]:
        acc, c = self.accelerator, self.config
        # accelerate's loader counts its own epochs from 0 in each process and passes that count to
        # the sampler on every iteration; tell it the true epoch, or a resumed run replays epoch 0's order
        self.loader.set_epoch(epoch)
        self.model.train()
        total_loss, tokens, sentences = 0.0, 0, 0
        start = time.perf_counter()
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{c.max_epochs}", leave=False,
                   disable=not acc.is_local_main_process, dynamic_ncols=True)
        lr = self._set_lr(epoch, 0)
        for step, batch in enumerate(bar):
            if c.schedule == "linear":
                lr = self._set_lr(epoch, step)
            loss = self.model(batch)
            self.optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if c.clip_norm:
                acc.clip_grad_norm_(self.model.parameters(), c.clip_norm)
            self.optimizer.step()
            total_loss += loss.item()
            tokens += int(batch["lengths"].sum())
            sentences += batch["lengths"].numel()
            if step % 20 == 0:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{total_loss / max(sentences, 1):.3f}",
                                tok_s=f"{tokens / max(elapsed, 1e-9):,.0f}")
        bar.close()
        seconds = time.perf_counter() - start
        self.state.train_seconds += seconds
        return {"epoch": epoch + 1, "lr": lr, "train_loss": total_loss / max(sentences, 1),
                "epoch_seconds": round(seconds, 2), "train_tokens_per_second": round(tokens / seconds),
                "train_seconds": round(self.state.train_seconds, 2)}

    def _after_epoch(self, epoch: int, metrics: Dict[str, Any], record: Dict[str, Any]) -> None:
        c, s = self.config, self.state
        score = float(metrics[c.metric])
        improved = score > s.best_score
        if improved:
            s.best_score, s.best_epoch, s.best_metrics = score, epoch + 1, dict(metrics)
            model = self.accelerator.unwrap_model(self.model)
            self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self._plateau = 0
        elif c.schedule == "plateau":
            self._plateau += 1
            if self._plateau >= 2:
                self._lr_scale *= 0.5
                self._plateau = 0
        s.epoch = epoch + 1
        s.history.append(record)
        logger.info("epoch %d: loss %.4f, dev %s %.2f%s, %.0f s, %s tokens/s", epoch + 1,
                    record["train_loss"], c.metric, score, " (best)" if improved else "",
                    record["epoch_seconds"], f"{record['train_tokens_per_second']:,}")
        if self.output_dir is not None and self.accelerator.is_main_process:
            with open(self.output_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        self._save_checkpoint()

    # checkpoints -----------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        if self.output_dir is None:
            return
        acc = self.accelerator
        acc.wait_for_everyone()
        if not acc.is_main_process:
            return
        with atomic_directory(self.output_dir / CHECKPOINT) as tmp:
            acc.save_state(str(tmp / "accelerate"))
            state = dict(vars(self.state), lr_scale=self._lr_scale, plateau=self._plateau)
            atomic_write_text(tmp / "trainer_state.json", json.dumps(state, indent=1, default=float))
            if self.best_weights is not None:
                save_file({k: v.contiguous() for k, v in self.best_weights.items()},
                          str(tmp / "best.safetensors"))

    def _load_checkpoint(self) -> None:
        path = self.output_dir / CHECKPOINT if self.output_dir else None
        if path is None or not (path / "trainer_state.json").exists():
            logger.info("no checkpoint to resume from in %s; starting afresh", self.output_dir)
            return
        self.accelerator.load_state(str(path / "accelerate"))
        saved = json.loads((path / "trainer_state.json").read_text())
        self._lr_scale, self._plateau = saved.pop("lr_scale", 1.0), saved.pop("plateau", 0)
        self.state = _State(**saved)
        if (path / "best.safetensors").exists():
            self.best_weights = load_file(str(path / "best.safetensors"))
        logger.info("resumed after epoch %d (best dev %.2f at epoch %d)", self.state.epoch,
                    self.state.best_score, self.state.best_epoch)
