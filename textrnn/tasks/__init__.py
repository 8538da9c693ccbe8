"""Tasks as users see them: strings in, labels out (tagging, classification)."""
from __future__ import annotations

from typing import Optional

from ..errors import DataFormatError
from ..hub import read_config, resolve_folder

BACKENDS = ("torch", "onnx")


def _backend(backend: Optional[str], quantize: Optional[str], exported: bool) -> str:
    """The backend to run on: by default onnx for exported folders and int8, torch otherwise."""
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8'; got {quantize!r}")
    backend = backend or ("onnx" if exported or quantize else "torch")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "torch" and quantize:
        raise ValueError("quantize='int8' runs on backend='onnx' (onnxruntime's int8 LSTM, about 2x "
                         "faster here); torch's quantized tensors are deprecated")
    return backend


def check_onnx_device(device) -> None:
    """The onnx backend runs on the CPU (onnxruntime's CPU provider): any other device is an error."""
    if device is None or device == -1 or str(device) == "cpu":
        return
    raise ValueError(f"the onnx backend runs on the CPU; got device={device!r} "
                     "(use backend='torch' for a GPU)")


def load_model(name_or_path, revision: Optional[str] = None, device=None, backend: Optional[str] = None,
               quantize: Optional[str] = None, threads: Optional[int] = None):
    """A saved tagger or classifier, whichever the folder's config.json names, on ``device``
    ("cpu", "cuda", "cuda:1", an int GPU index or a torch.device; default the CPU).

    ``backend="onnx"`` runs it on onnxruntime (a torch folder is exported in memory; an exported
    folder, from ``textrnn export``, loads without importing torch); ``quantize="int8"`` adds
    onnxruntime's dynamic int8 quantization. ``threads``: onnxruntime's thread count."""
    from ..export.runtime import is_exported

    folder = resolve_folder(name_or_path, revision)
    data = read_config(folder)
    exported = is_exported(data)
    backend = _backend(backend, quantize, exported)
    if backend == "onnx":
        check_onnx_device(device)
    if exported:
        if backend != "onnx":
            raise ValueError(f"{folder} is an exported ONNX model: it runs on backend='onnx' only")
        from ..export.runtime import load_exported

        return load_exported(folder, data, quantize, threads)
    from .classification import TextClassifier
    from .tagging import SequenceTagger

    classes = {cls.architecture: cls for cls in (SequenceTagger, TextClassifier)}
    architecture = data["architecture"]
    if architecture not in classes:
        raise DataFormatError(folder / "config.json", None,
                              f"unknown architecture {architecture!r}; this textrnn loads "
                              f"{', '.join(sorted(classes))}")
    model = classes[architecture].from_pretrained(folder, device=device)
    return with_backend(model, backend, quantize, threads)


def with_backend(model, backend: Optional[str] = None, quantize: Optional[str] = None,
                 threads: Optional[int] = None):
    """A loaded model on the backend asked for: a torch model is exported in memory for onnx."""
    from ..export.runtime import OnnxBackend

    on_onnx = isinstance(model, OnnxBackend)
    backend = _backend(backend, quantize, on_onnx)
    if on_onnx:
        if backend != "onnx":
            raise ValueError("an onnxruntime model cannot run on backend='torch'; load the torch folder")
        if quantize and model.export_info.get("quantize") != quantize:
            raise ValueError("quantize this model when loading it: load_model(folder, quantize='int8')")
        return model
    if backend == "onnx":
        from ..export import to_onnx_model

        return to_onnx_model(model, quantize, threads)
    return model
