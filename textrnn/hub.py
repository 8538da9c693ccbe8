"""Model folders: config.json + model.safetensors + tokenizer.json + vocabularies + a model card.

Nothing here unpickles: weights are safetensors, everything else JSON. ``config.json`` names a
versioned architecture (``birnn-tagger/1``); a folder whose architecture this release does not
know is refused with a message that says which ones it does.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import DataFormatError
from .utils import PathLike, atomic_directory, atomic_write_text

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
CHARS_NAME = "char_vocab.json"
CARD_NAME = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def write_model_folder(path: PathLike, config: Dict[str, Any], state_dict: Dict[str, torch.Tensor],
                       write_extra: Callable[[Path], None], card: Optional[str] = None) -> Path:
    """Write the whole folder in a temporary place, then rename it over ``path``."""
    path = Path(path)
    with atomic_directory(path) as tmp:
        atomic_write_text(tmp / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        save_file({k: v.detach().contiguous().cpu() for k, v in state_dict.items()},
                  str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        write_extra(tmp)
        if card is not None:
            atomic_write_text(tmp / CARD_NAME, card)
    return path


def read_config(folder: Path) -> Dict[str, Any]:
    """config.json of a model folder, with clear errors for what is missing or unreadable."""
    if not folder.is_dir():
        raise DataFormatError(folder, None, "expected a model folder (config.json, model.safetensors, "
                              "tokenizer.json); no such folder")
    path = folder / CONFIG_NAME
    if not path.exists():
        raise DataFormatError(folder, None, f"no {CONFIG_NAME} in this folder: not a textrnn model")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(path, getattr(err, "lineno", None), f"not valid JSON ({err})") from None
    if not isinstance(config, dict) or "architecture" not in config:
        raise DataFormatError(path, None, "expected a JSON object with an 'architecture' field")
    return config


def read_weights(folder: Path) -> Dict[str, torch.Tensor]:
    """model.safetensors; a pickle in its place is refused, never loaded."""
    path = folder / WEIGHTS_NAME
    if not path.exists():
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded)" if pickles else ""
        raise DataFormatError(folder, None, f"no {WEIGHTS_NAME} in this folder{hint}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataFormatError(path, None, f"not a readable safetensors file ({err})") from None


def load_state(module: torch.nn.Module, weights: Dict[str, torch.Tensor], folder: Path) -> None:
    """Load weights strictly, turning torch's key/shape complaints into one clear error."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:4])
        raise DataFormatError(folder / WEIGHTS_NAME, None,
                              f"weights do not match config.json ({detail})") from None


def resolve_folder(name_or_path: PathLike, revision: Optional[str] = None) -> Path:
    """A local folder as is; anything else as a hub repo id through the local HF cache or the hub."""
    path = Path(name_or_path)
    if path.exists():
        return path
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise DataFormatError(path, None, "no such model folder (and not a hub id like 'org/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, revision=revision))
    except LocalEntryNotFoundError as err:
        raise DataFormatError(name, None, "not in the local Hugging Face cache and the hub cannot be "
                              f"reached (offline?); pass a local model folder instead ({err})") from None
    except HfHubHTTPError as err:
        raise DataFormatError(name, None, f"the hub refused this model id ({err})") from None
