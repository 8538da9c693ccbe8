"""Exported models on onnxruntime: the same predict / pipeline outputs as the torch classes,
with numpy, tokenizers and onnxruntime only (no torch, no datasets, no gensim)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ..config import ClassifierConfig, TaggerConfig
from ..errors import DataFormatError
from ..frontend import Arrays, ClassifierFrontend, TaggerFrontend
from ..hub import CRF_NAME, ONNX_NAME  # noqa: F401  (export/__init__ imports them from here too)
from ..lexicon import Lexicon, load_model_lexicon
from ..vocab import BigramVocab, CharVocab, WordVocab

CRF_KEYS = ("transitions", "start_transitions", "end_transitions")
# config.json keys that describe the export rather than the model
EXPORT_KEY = "export"


def session(model_bytes: bytes, threads: Optional[int] = None):
    """An onnxruntime CPU session with every graph optimisation on."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running an ONNX model needs onnxruntime; install it with: "
                          "pip install 'textrnn[export]'") from None

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


class OnnxBackend:
    """The onnxruntime side shared by both tasks: feed the arrays the graph declares."""

    precision = "fp32"
    export_info: Dict[str, Any]

    def _bind(self, model_bytes: bytes, threads: Optional[int], info: Dict[str, Any]) -> None:
        self.session = session(model_bytes, threads)
        self._inputs = [i.name for i in self.session.get_inputs()]
        self.export_info = info

    def to(self, device) -> "OnnxBackend":
        """Only the CPU: onnxruntime's CPU provider runs exported models here."""
        from ..tasks import check_onnx_device

        check_onnx_device(device)
        return self

    def _run(self, output: str, arrays: Arrays) -> np.ndarray:
        return self.session.run([output], {name: arrays[name] for name in self._inputs})[0]

    def autocast(self):
        """Validates ``precision`` (only fp32 here: onnxruntime has no bfloat16 RNN kernels on CPU)."""
        if self.precision != "fp32":
            raise ValueError(f"precision {self.precision!r} is not available with the onnx backend: "
                             "use precision='fp32' (quantize='int8' for speed) or the torch backend")
        import contextlib

        return contextlib.nullcontext()


class OnnxSequenceTagger(OnnxBackend, TaggerFrontend):
    """A tagger whose emissions come from onnxruntime; decoding is textrnn.decoding's."""

    task = "token-classification"

    def __init__(self, model_bytes: bytes, config: TaggerConfig, words: WordVocab, chars: Optional[CharVocab],
                 bigrams: Optional[BigramVocab], crf: Optional[Dict[str, np.ndarray]],
                 threads: Optional[int] = None, info: Optional[Dict[str, Any]] = None,
                 lexicon: Optional[Lexicon] = None):
        self.config, self.words, self.chars, self.bigrams = config, words, chars, bigrams
        self.lexicon = lexicon
        self.labels: List[str] = list(config.labels)
        self._crf = None if crf is None else tuple(np.asarray(crf[k], dtype=np.float32) for k in CRF_KEYS)
        self._bind(model_bytes, threads, info or {})

    def emission_scores(self, arrays: Arrays) -> np.ndarray:
        return self._run("emissions", arrays)

    def crf_parameters(self):
        return self._crf


class OnnxTextClassifier(OnnxBackend, ClassifierFrontend):
    """A classifier whose probabilities come from onnxruntime."""

    task = "text-classification"

    def __init__(self, model_bytes: bytes, config: ClassifierConfig, words: WordVocab,
                 bigrams: Optional[BigramVocab], threads: Optional[int] = None,
                 info: Optional[Dict[str, Any]] = None, lexicon: Optional[Lexicon] = None):
        self.config, self.words, self.bigrams, self.lexicon = config, words, bigrams, lexicon
        self.labels: List[str] = list(config.labels)
        self._bind(model_bytes, threads, info or {})

    def probability_scores(self, arrays: Arrays) -> np.ndarray:
        return self._run("probabilities", arrays)

    def predict_proba(self, texts, batch_size: int = 256) -> np.ndarray:
        """(texts, num_labels) probabilities as a numpy array (the torch class gives a tensor)."""
        return self.probabilities(texts, batch_size)


def quantize_int8(model_bytes: bytes) -> bytes:
    """onnxruntime's dynamic int8 quantization of the LSTM and MatMul weights (activations are
    quantized per batch at run time); embeddings, the char CNN and GRUs stay float32."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model_bytes)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM", "MatMul"])
        return target.read_bytes()


def is_exported(data: Dict[str, Any]) -> bool:
    """Whether a config.json belongs to an exported (ONNX) folder."""
    return isinstance(data.get(EXPORT_KEY), dict)


def load_exported(folder: Path, data: Dict[str, Any], quantize: Optional[str] = None,
                  threads: Optional[int] = None):
    """The OnnxSequenceTagger / OnnxTextClassifier of an exported folder (config.json already read);
    ``quantize="int8"`` quantizes a float32 export as it loads."""
    from ..hub import BIGRAMS_NAME, CHARS_NAME, TOKENIZER_NAME

    info = data[EXPORT_KEY]
    if info.get("format") != "onnx":
        raise DataFormatError(folder / "config.json", None,
                              f"unknown export format {info.get('format')!r}; this textrnn runs 'onnx'")
    path = folder / ONNX_NAME
    if not path.exists():
        raise DataFormatError(folder, None, f"an exported model needs {ONNX_NAME}; not found")
    architecture = data["architecture"]
    if architecture not in (TaggerConfig.architecture, ClassifierConfig.architecture):
        raise DataFormatError(folder / "config.json", None,
                              f"unknown architecture {architecture!r}; this textrnn runs "
                              f"{TaggerConfig.architecture}, {ClassifierConfig.architecture}")
    settings = {k: v for k, v in data.items() if k not in ("task", "lowercase", "metrics", EXPORT_KEY)}
    words = WordVocab.load(folder / TOKENIZER_NAME)
    model_bytes = path.read_bytes()
    if quantize == "int8" and info.get("quantize") != "int8":
        model_bytes = quantize_int8(model_bytes)
        info = dict(info, quantize="int8")
    bigrams_path = folder / BIGRAMS_NAME
    if architecture == TaggerConfig.architecture:
        config = TaggerConfig.from_dict(settings)
        chars = CharVocab.load(folder / CHARS_NAME) if config.char_encoder != "none" else None
        bigrams = BigramVocab.load(bigrams_path) if config.bigram_vocab_size else None
        crf = _read_crf(folder / CRF_NAME) if config.use_crf else None
        return OnnxSequenceTagger(model_bytes, config, words, chars, bigrams, crf, threads, info,
                                  load_model_lexicon(folder, config))
    config = ClassifierConfig.from_dict(settings)
    bigrams = BigramVocab.load(bigrams_path) if config.bigram_vocab_size else None
    return OnnxTextClassifier(model_bytes, config, words, bigrams, threads, info,
                              load_model_lexicon(folder, config))


def _read_crf(path: Path) -> Dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        crf = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataFormatError(path, None, f"expected the CRF scores as safetensors ({err})") from None
    missing = [k for k in CRF_KEYS if k not in crf]
    if missing:
        raise DataFormatError(path, None, f"missing {', '.join(missing)}")
    return crf


