"""What taggers and classifiers share: batching for inference, Dataset encoding, the training call."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch

from .. import frontend
from ..decoding_torch import upload
from ..errors import DataFormatError
from ..hub import (TOKENIZER_NAME, check_vocabularies, check_weights, load_config, load_state, read_config,
                   read_weights, resolve_folder, write_model_folder)
from ..utils import resolve_device
from ..vocab import WordVocab, pre_tokenize

Item = Dict[str, Any]
ENCODING_VERSION = 2  # bump when encode_dataset's columns change, so cached tables are not served stale
logger = logging.getLogger(__name__)


class TaskModel:
    """An nn.Module plus what turns strings into its tensors: the string side comes from
    ``textrnn.frontend`` (shared with the ONNX backend), this class runs the module on it."""

    architecture = ""
    model: torch.nn.Module
    config: Any
    words: Any
    precision = "fp32"  # "bf16": run inference under bfloat16 autocast (about 2x faster on CPUs with
    #                     AVX-512 BF16 or AMX; scores differ from fp32 in the third decimal)

    def autocast(self):
        """The inference context for ``precision``; the CRF itself always computes in float32."""
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16'; got {self.precision!r}")
        device = next(self.model.parameters()).device.type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @contextlib.contextmanager
    def inference(self):
        """Eval mode for the duration (restored afterwards)."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> "TaskModel":
        """Move the network to ``device`` ("cpu", "cuda", "cuda:1", an int GPU index, a torch.device)."""
        self.model.to(resolve_device(device))
        return self

    def overlap_network(self) -> bool:
        """The worker thread: on the CPU only when torch leaves a core free (its spinning OpenMP
        threads slow down when a Python thread runs beside them on every core, see
        ``network_batches``); on a GPU never, since every kernel launch in the worker has to win
        the GIL back from the caller's Python (up to ``sys.getswitchinterval()`` each,
        ``bench/gil_handoff.py``) and a batch is hundreds of launches. A tagger on a GPU runs
        ahead without a thread instead where ``overlap`` is True (``_decode_on_device``)."""
        if self.device.type != "cpu":
            return False
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return torch.get_num_threads() < cores

    def run_module(self, method: Callable[[Dict[str, torch.Tensor]], torch.Tensor], arrays,
                   to_host: bool = True):
        """``method`` (e.g. ``self.model.emissions``) on a batch of frontend arrays, as float32 numpy
        (``to_host=False``: a float32 tensor left on the model's device), without autograd and
        under the precision's autocast (both are per thread, so they are entered here, in
        whichever thread runs the batch)."""
        device = next(self.model.parameters()).device
        with torch.inference_mode(), self.autocast():
            batch = {k: upload(v, device) for k, v in arrays.items()}  # (on a GPU: pinned, not waiting)
            out = method(batch).float()
            return out.cpu().numpy() if to_host else out

    def collate(self, items: Sequence[Item]) -> Dict[str, torch.Tensor]:
        """One padded batch of tensors for the module (training and inference alike)."""
        batch = {k: torch.from_numpy(v) for k, v in self.arrays(items).items()}
        batch.update(self.collate_targets(items))
        return batch

    def collate_targets(self, items: Sequence[Item]) -> Dict[str, torch.Tensor]:  # pragma: no cover
        """The training targets of a batch, if its items carry them."""
        raise NotImplementedError

    task = ""  # the Hugging Face task name written into config.json
    config_class: Any = None
    model_class: Any = None

    def vocabularies(self) -> Dict[str, Any]:
        """File name -> vocabulary object (None where the model has no such part)."""
        return {TOKENIZER_NAME: self.words}

    def save_pretrained(self, path, card: Optional[str] = None):
        """Write a hub-ready folder; loading it needs neither gensim nor the training corpus."""
        config = dict(self.config.to_dict(), task=self.task)

        def extra(folder) -> None:
            for name, vocab in self.vocabularies().items():
                if vocab is not None:
                    vocab.save(folder / name)

        return write_model_folder(path, config, self.model.state_dict(), extra, card)

    @classmethod
    def from_pretrained(cls, name_or_path, revision: Optional[str] = None, device=None):
        """A saved model from a folder or a hub id, on ``device`` (default: the CPU); refuses other
        architectures and damaged files."""
        folder, data = cls._open_folder(name_or_path, revision)
        config = load_config(cls.config_class, data, folder)  # config.json checked against weights
        weights = read_weights(folder)  # and vocabularies: clear errors naming config.json's fields
        check_weights(cls.model_class, config, weights, folder)
        model = cls.model_class(config)
        load_state(model, weights, folder)
        model.eval()
        task = cls._assemble(model, folder)
        check_vocabularies(task.vocabularies(), config, folder)
        return task.to(device) if device is not None else task

    @classmethod
    def _assemble(cls, model, folder):  # pragma: no cover - abstract
        """The task object around a loaded module, with its vocabularies read from ``folder``."""
        raise NotImplementedError

    @classmethod
    def _open_folder(cls, name_or_path, revision: Optional[str]):
        """The folder and its config.json minus bookkeeping keys, refusing other architectures."""
        folder = resolve_folder(name_or_path, revision)
        data = read_config(folder)
        if data["architecture"] != cls.architecture:
            raise DataFormatError(folder / "config.json", None,
                                  f"unknown architecture {data['architecture']!r}; this class loads "
                                  f"{cls.architecture!r} models")
        return folder, {k: v for k, v in data.items() if k not in ("task", "lowercase", "metrics")}


def padded(rows: Sequence[Sequence[int]], width: int) -> torch.Tensor:
    """Rows of ids, right-padded with 0 to ``width``, as one LongTensor."""
    return torch.from_numpy(frontend.padded(rows, width))


class TokenStream:
    """The values of a Dataset column (token lists, or texts through ``tokenize``), read in batches:
    iterable any number of times, never all in memory at once (vocabularies and vectors are built
    from corpora larger than memory)."""

    def __init__(self, dataset, column: str = "tokens", tokenize: Optional[Callable[[str], List[str]]] = None,
                 batch_size: int = 2000):
        self.dataset, self.column, self.tokenize, self.batch_size = dataset, column, tokenize, batch_size

    def __iter__(self) -> Iterator[List[str]]:
        if isinstance(self.dataset, (list, tuple)):
            rows: Iterator = iter(self.dataset)
        else:
            rows = (row for batch in self.dataset.select_columns([self.column]).iter(batch_size=self.batch_size)
                    for row in batch[self.column])
        for row in rows:
            yield self.tokenize(row) if self.tokenize is not None else row

    def __len__(self) -> int:
        return len(self.dataset)


def encode_dataset(task: TaskModel, dataset, encode_batch: Callable[[Dict], Dict], signature: str,
                   label_features: Dict[str, Any]):
    """``Dataset.map`` to ids: an Arrow table (memory-mapped when the corpus came from files) with a
    ``length`` column for batching, cached by datasets under a fingerprint of data and vocabulary.

    Output types are declared, not inferred: a first write batch whose lists are all empty would
    otherwise fix a column's type to null and fail on the next batch."""
    import datasets

    ids = datasets.Sequence(datasets.Value("int32"))
    nested = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
    known = {"words": ids, "bigrams": ids, "chars": nested, "oov": nested, "length": datasets.Value("int32"),
             **label_features}

    def with_length(batch):
        out = encode_batch(batch)
        out["length"] = [len(w) for w in out["words"]]
        return out

    sample = with_length(dataset[:1])
    features = datasets.Features({name: known[name] for name in sample})
    fingerprint = hashlib.sha1(f"{dataset._fingerprint}-{signature}-{ENCODING_VERSION}".encode()).hexdigest()
    return dataset.map(with_length, batched=True, batch_size=2000, remove_columns=dataset.column_names,
                       new_fingerprint=fingerprint, features=features, desc="encoding")


def shard_map(fn: Callable[[List[Any]], List[Any]], items: Sequence[Any], accelerator=None) -> List[Any]:
    """``fn(items)``, with the items shared out across processes and the results gathered, in order,
    on every process (``gather_for_metrics``), so each process scores the same predictions."""
    world = accelerator.num_processes if accelerator is not None else 1
    if world == 1:
        return fn(list(items))
    rank = accelerator.process_index
    mine = list(range(rank, len(items), world))
    results = fn([items[i] for i in mine]) if mine else []
    gathered = accelerator.gather_for_metrics(list(zip(mine, results)), use_gather_object=True)
    out: List[Any] = [None] * len(items)
    for i, result in gathered:
        out[i] = result
    return out


def label_index(names: Sequence[str], labels: Sequence[str]) -> List[int]:
    """Dataset label ids -> model label ids (-1 for names the model does not know)."""
    position = {label: i for i, label in enumerate(labels)}
    return [position.get(name, -1) for name in names]


def warn_unknown(kind: str, counts: Dict[str, int], where: str) -> None:
    """Gold labels the model never saw in training: they can only be wrong; say so with counts."""
    if counts:
        listed = ", ".join(f"{name} ({n:,})" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        logger.warning("%s holds %s the model was not trained on: %s. They count as errors.", where, kind, listed)


def initial_embeddings(sentences: Sequence[Sequence[str]], embeddings: Optional[str], *,
                       extra_pretrained: int, lowercase: bool, word_dim: int, seed: int, min_freq: int = 1,
                       unicode_normalize: bool = False, embeddings_text: Optional[str] = None,
                       freeze: bool = False, trust_pickle: bool = False) -> "InitialEmbeddings":
    """The word vocabulary and its initial vectors (``InitialEmbeddings``).

    ``embeddings``: a vectors file (GloVe, word2vec, fastText), ``word2vec``/``fasttext`` to train
    them on ``sentences`` (plus the lines of ``embeddings_text``, unlabelled text of the same
    kind) with gensim, or None/``random`` for random vectors of ``word_dim``. ``freeze`` keeps every
    initialised vector fixed (only <pad>/<unk> train): often better on small corpora. ``trust_pickle``
    allows gensim's native files, which are pickles (loading one can run code).
    """
    options = dict(lowercase=lowercase, unicode_normalize=unicode_normalize)
    vocab = WordVocab.build(sentences, min_freq=min_freq, **options)
    if embeddings in (None, "random"):
        return InitialEmbeddings(vocab, None, word_dim, len(vocab))
    from .. import embeddings as emb  # gensim is imported only when building from vectors

    training, normalised = {}, None
    if embeddings in ("word2vec", "fasttext"):
        training = dict(dim=word_dim, seed=seed)
        extra = read_text_lines(embeddings_text) if embeddings_text else []
        normalised = _Normalised([sentences, extra], vocab.normalize)
    vectors = emb.vectors_from_source(embeddings, corpus_sentences=normalised, trust_pickle=trust_pickle, **training)
    table = emb.build_embedding_matrix(vocab.words, vectors, train_counts=vocab.counts,
                                       extra_pretrained=extra_pretrained, seed=seed)
    vocab = WordVocab.from_words(table.words[2:], **options)
    subword_config, ngrams = {}, None
    if vectors.subwords is not None:  # fastText: carry the n-gram table for unseen words
        sub = vectors.subwords
        subword_config = dict(subword_buckets=sub["bucket"], subword_min_n=sub["min_n"], subword_max_n=sub["max_n"])
        ngrams = torch.from_numpy(sub["vectors_ngrams"])
    trainable = 2 if freeze else table.num_trainable
    matrix = torch.from_numpy(table.matrix)
    return InitialEmbeddings(vocab, matrix, matrix.shape[1], trainable, subword_config, ngrams)


@dataclass
class InitialEmbeddings:
    """What ``initial_embeddings`` builds: the vocabulary, and the rows its embedding starts from."""

    vocab: WordVocab
    matrix: Optional[torch.Tensor]  # (V, D), the vocabulary's rows then extra frozen ones; None: random
    dim: int
    trainable: int  # the first rows, which train; the rest stay frozen
    subwords: Dict[str, int] = field(default_factory=dict)  # fastText n-gram settings for the config
    ngrams: Optional[torch.Tensor] = None  # (buckets, D) fastText n-gram rows

    def config(self) -> Dict[str, int]:
        """The model config's fields for these words."""
        return dict(vocab_size=len(self.vocab), word_dim=self.dim, num_trainable_words=self.trainable,
                    **self.subwords)


class _Normalised:
    """Sentences as the vocabulary sees them, streamed again on every pass (gensim makes several)."""

    def __init__(self, sources, normalize):
        self.sources, self.normalize = sources, normalize

    def __iter__(self):
        for source in self.sources:
            for sentence in source:
                yield [self.normalize(w) for w in sentence]


def read_text_lines(path) -> List[List[str]]:
    """Unlabelled text for training vectors: one sentence per line, pre-tokenized like the data
    (Chinese per character, so per-character tokens match a character-level corpus)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"expected UTF-8 text ({err})") from None
    return [[t for t, _ in pre_tokenize(line)] for line in lines if line.strip()]


def lexicon_features(spec: str, sentences, config: Dict[str, Any], *, weighting: str, vectors: str,
                     embeddings_text: Optional[str], seed: int):
    """The ``Lexicon`` and the module's initial (weights, rows, vectors) for ``spec`` matched over
    ``sentences``; records the sizes in ``config`` (the model's settings, updated in place)."""
    from ..lexicon import build_lexicon_features

    extra = read_text_lines(embeddings_text) if embeddings_text else []
    feats = build_lexicon_features(spec, sentences, dim=config.get("lexicon_dim", 50), weighting=weighting,
                                   vectors=vectors, extra_sentences=extra, seed=seed)
    config.update(lexicon_size=len(feats.lexicon), lexicon_rows=feats.num_rows,
                  lexicon_trainable=feats.num_trainable)
    initial = (torch.tensor(feats.weights), torch.tensor(feats.rows, dtype=torch.int32), feats.vectors)
    return feats.lexicon, initial
