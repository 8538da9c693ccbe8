"""``textrnn serve``: a model behind HTTP, in the Hugging Face Inference API shapes, with dynamic batching.

    from textrnn.serve import ServeSettings, run
    run("runs/conll03-bilstm-crf", port=8080, settings=ServeSettings(max_batch_size=64, max_wait_ms=5))

Needs the ``serve`` extra (FastAPI and uvicorn): ``pip install 'textrnn[serve]'``. Names are
imported on first use, so the settings and the request checks load without FastAPI.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ServeSettings": "textrnn.serve.settings",
    "create_app": "textrnn.serve.app",
    "run": "textrnn.serve.app",
    "DynamicBatcher": "textrnn.serve.batching",
    "ServedModel": "textrnn.serve.model",
    "RequestError": "textrnn.serve.protocol",
    "parse_request": "textrnn.serve.protocol",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'textrnn.serve' has no attribute {name!r}")


def __dir__():
    return __all__
