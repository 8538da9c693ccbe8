"""The server's bounds, kept free of FastAPI so that ``textrnn --help`` needs no serve extra."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class ServeSettings:
    """Each field is a ``textrnn serve`` flag of the same name."""

    max_batch_size: int = 64  # items (input texts) per model call
    max_wait_ms: float = 20.0  # once the model is free, how long to wait for more items to join a call
    max_body_bytes: int = 1_000_000
    max_input_chars: int = 100_000  # per input text; longer documents get 413
    threads: Optional[int] = None  # the model's CPU threads, torch's or onnxruntime's (default: theirs)

    def __post_init__(self):
        for name in ("max_batch_size", "max_body_bytes", "max_input_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more; got {self.max_wait_ms}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1; got {self.threads}")
