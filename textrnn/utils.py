"""Small helpers shared across textrnn: atomic writes, paths, logging."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

if TYPE_CHECKING:
    import torch

PathLike = Union[str, os.PathLike]

REPO_ROOT = Path(__file__).resolve().parents[1]
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give: saved files are meant to be shared


def default_data_dir() -> Path:
    """``$TEXTRNN_DATA_DIR``, or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("TEXTRNN_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write a text file whole or not at all: a crash leaves the old file (or none), never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write a file whole or not at all (a temporary file beside it, then one rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data reaches the disk before the rename makes it visible
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600 files; saved models are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fsync_file(path: PathLike) -> None:
    """Flush a file written by someone else (safetensors, numpy) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: PathLike) -> None:
    """Make the renames inside a folder durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_device(device) -> "torch.device":
    """A torch.device from what users write: "cpu", "cuda", "cuda:1", "mps", an int GPU index (-1 for
    the CPU, as transformers' pipelines take it) or a torch.device; an unavailable GPU is a clear error."""
    import torch

    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, int) and not isinstance(device, bool):
        resolved = torch.device("cpu") if device < 0 else torch.device("cuda", device)
    elif isinstance(device, str):
        try:
            resolved = torch.device(device.strip().lower())
        except RuntimeError:
            raise ValueError(f"unknown device {device!r}; expected 'cpu', 'cuda', 'cuda:N', 'mps' or a GPU index") from None
    else:
        raise ValueError(f"device must be a string, an int or a torch.device; got {type(device).__name__}")
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = resolved.index or 0
        if index >= count:
            raise ValueError(f"device {str(resolved)!r} is not available: this machine has "
                             f"{count} CUDA device(s)" + ("" if count else " (use 'cpu')"))
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available on this machine (use 'cpu')")
    return resolved


def has_float64(device) -> bool:
    """Whether tensors on ``device`` can be float64: Apple's MPS has none (a known limit, pytorch#122602)."""
    import torch

    return torch.device(device).type != "mps"


def setup_logging(verbose: bool = False) -> None:
    """Plain one-line log records on stderr, for recipes and the command line. Under a launcher
    (torchrun, accelerate launch) only the first process logs its progress; the others warn only."""
    quiet = int(os.environ.get("RANK", "0")) > 0
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("datasets", "gensim", "accelerate", "smart_open", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
