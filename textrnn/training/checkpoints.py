"""Checkpoints of a training run: written whole by every process, validated before they are trusted.

A checkpoint is a folder ``checkpoints/step-00001234`` holding accelerate's state (model and
optimiser, saved by every process so that FSDP/DeepSpeed work too), each process's random number
generators (safetensors + JSON, no pickle), the loop's own state (``trainer_state.json``) and the
best weights so far. It is written under a temporary name and renamed once every process has
finished, so a crash leaves the previous checkpoint, never half of a new one. The newest ``keep``
checkpoints are kept: when the newest is damaged, resuming falls back to the one before, loudly.
"""
from __future__ import annotations

import json
import logging
import random
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import TextrnnError
from ..utils import atomic_write_text

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_NAME = "trainer_state.json"
BEST_NAME = "best.safetensors"
AVERAGE_NAME = "average.safetensors"  # the weight average (--average-weights), where the run keeps one
ACCELERATE_DIR = "accelerate"
MODEL_FILE = "model.safetensors"  # what accelerate's save_state calls the first model's weights
OPTIMIZER_FILE = "optimizer.bin"
_STEP = re.compile(r"^step-(\d+)$")


class CheckpointError(TextrnnError):
    """A checkpoint that cannot be used to resume: damaged, or made by a different model."""


def checkpoint_root(output_dir) -> Path:
    return Path(output_dir) / CHECKPOINTS


def list_checkpoints(output_dir) -> List[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def remove_checkpoints(output_dir) -> None:
    """Drop a run's checkpoints once its finished model is safely saved."""
    shutil.rmtree(checkpoint_root(output_dir), ignore_errors=True)


# random number generators, without pickle --------------------------------------------------------
def _rng_tensors() -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": json.dumps([version, list(internal), gauss]),
            "numpy": json.dumps([kind, keys.tolist(), int(pos), int(has_gauss), float(cached)])}
    return tensors, meta


def save_rng(path: Path) -> None:
    tensors, meta = _rng_tensors()
    save_file(tensors, str(path), metadata=meta)


def _read_rng(path: Path):
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        python, numpy_state = json.loads(meta["python"]), json.loads(meta["numpy"])
        if len(python) != 3 or len(numpy_state) != 5 or "torch_cpu" not in tensors:
            raise ValueError("missing generators")
    except (OSError, SafetensorError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: the random number generator state is unreadable ({err})") from None
    return python, numpy_state, tensors


def load_rng(path: Path) -> None:
    """Restore this process's generators; a missing or unreadable file is an error, not a shrug."""
    (version, internal, gauss), (kind, keys, pos, has_gauss, cached), tensors = _read_rng(path)
    state = tensors["torch_cpu"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state)
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


# writing --------------------------------------------------------------------------------------------
def save_checkpoint(accelerator, output_dir, step: int, state: Dict[str, Any],
                    best_weights: Optional[Dict[str, torch.Tensor]], keep: int,
                    average: Optional[Dict[str, torch.Tensor]] = None) -> Path:
    """Every process writes its part into a temporary folder; the main process renames it."""
    root = checkpoint_root(output_dir)
    final, tmp = root / f"step-{step:08d}", root / f".step-{step:08d}.tmp"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp / ACCELERATE_DIR))
        save_rng(tmp / f"rng-{accelerator.process_index}.safetensors")
        if main:
            if best_weights is not None:
                save_file({k: v.detach().contiguous().cpu() for k, v in best_weights.items()}, str(tmp / BEST_NAME))
            if average is not None:
                save_file({k: v.detach().contiguous().cpu() for k, v in average.items()}, str(tmp / AVERAGE_NAME))
            atomic_write_text(tmp / STATE_NAME, json.dumps(state, indent=1, default=float))
    except BaseException:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
    if main:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


# reading ------------------------------------------------------------------------------------------
def _check_files(folder: Path, num_processes: int) -> None:
    """Read every file of a checkpoint once, so a damaged one is named before anything is loaded."""
    state_path = folder / STATE_NAME
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or "global_step" not in state:
            raise ValueError("expected a JSON object with the loop's state (global_step, epoch, ...)")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{state_path}: unreadable trainer state ({err})") from None
    weights = [folder / ACCELERATE_DIR / MODEL_FILE] + [folder / name for name in (BEST_NAME, AVERAGE_NAME)
                                                       if (folder / name).exists()]
    for path in weights:
        try:
            load_file(str(path))
        except (OSError, SafetensorError, ValueError) as err:
            raise CheckpointError(f"{path}: damaged or missing weights ({err})") from None
    optimizer = folder / ACCELERATE_DIR / OPTIMIZER_FILE
    try:
        torch.load(str(optimizer), map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many kinds (zip, unpickling, EOF) for one cause
        raise CheckpointError(f"{optimizer}: damaged or missing optimiser state ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from None
    for rank in range(num_processes):
        rng = folder / f"rng-{rank}.safetensors"
        if not rng.exists():
            raise CheckpointError(f"{rng}: missing (the checkpoint was written by fewer processes than "
                                  f"the {num_processes} resuming it)")
        _read_rng(rng)


def check_model_matches(folder: Path, model: torch.nn.Module) -> None:
    """The checkpoint's weights have this model's names and shapes, or a clear error says which differ."""
    saved = load_file(str(folder / ACCELERATE_DIR / MODEL_FILE))
    saved = {k[len("module."):] if k.startswith("module.") else k: v for k, v in saved.items()}
    current = model.state_dict()
    problems = [f"{k} is missing" for k in current if k not in saved]
    problems += [f"{k} is {tuple(saved[k].shape)} there, {tuple(v.shape)} here"
                 for k, v in current.items() if k in saved and saved[k].shape != v.shape]
    problems += [f"{k} is unexpected" for k in saved if k not in current]
    if problems:
        raise CheckpointError(
            f"{folder}: this checkpoint was made by a different model ({'; '.join(problems[:3])}"
            f"{'; ...' if len(problems) > 3 else ''}). Resume with the same model settings as the "
            "interrupted run, or train afresh in a new --output-dir.")


def usable_checkpoint(output_dir, num_processes: int) -> Optional[Path]:
    """The newest checkpoint whose files all read; older ones stand in for damaged ones, said loudly."""
    candidates = list_checkpoints(output_dir)
    errors = []
    for folder in reversed(candidates):
        try:
            _check_files(folder, num_processes)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        if errors:
            logger.warning("the newest checkpoint is damaged (%s); resuming from the older %s instead",
                           "; ".join(errors), folder.name)
        return folder
    if errors:
        raise CheckpointError(f"no usable checkpoint in {checkpoint_root(output_dir)}: " + "; ".join(errors)
                              + ". Delete the folder to train afresh.")
    return None


def load_checkpoint(accelerator, folder: Path, model: torch.nn.Module):
    """(trainer state, best weights or None, weight average or None) after loading model, optimiser and
    generators."""
    check_model_matches(folder, model)
    accelerator.load_state(str(folder / ACCELERATE_DIR))
    load_rng(folder / f"rng-{accelerator.process_index}.safetensors")
    state = json.loads((folder / STATE_NAME).read_text(encoding="utf-8"))
    best = load_file(str(folder / BEST_NAME)) if (folder / BEST_NAME).exists() else None
    average = load_file(str(folder / AVERAGE_NAME)) if (folder / AVERAGE_NAME).exists() else None
    return state, best, average
