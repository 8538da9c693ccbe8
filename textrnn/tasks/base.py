"""What taggers and classifiers share: batching for inference, Dataset encoding, the training call."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import frontend
from ..config import TrainingConfig
from ..errors import DataFormatError
from ..hub import TOKENIZER_NAME, load_state, read_config, read_weights, resolve_folder, write_model_folder
from ..training.batching import BucketBatchSampler
from ..vocab import WordVocab, pre_tokenize

Item = Dict[str, Any]


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

    def overlap_network(self) -> bool:
        """Only when torch leaves a core free: its spinning OpenMP threads slow down when a
        Python thread runs beside them on every core (see ``network_batches``)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return torch.get_num_threads() < cores

    def run_module(self, method: Callable[[Dict[str, torch.Tensor]], torch.Tensor], arrays) -> np.ndarray:
        """``method`` (e.g. ``self.model.emissions``) on a batch of frontend arrays, as float32 numpy,
        without autograd and under the precision's autocast (both are per thread, so they are
        entered here, in whichever thread runs the batch)."""
        device = next(self.model.parameters()).device
        batch = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        with torch.inference_mode(), self.autocast():
            return method(batch).float().cpu().numpy()

    def collate(self, items: Sequence[Item]) -> Dict[str, torch.Tensor]:
        """One padded batch of tensors for the module (training and inference alike)."""
        batch = {k: torch.from_numpy(v) for k, v in self.arrays(items).items()}
        batch.update(self.collate_targets(items))
        return batch

    def collate_targets(self, items: Sequence[Item]) -> Dict[str, torch.Tensor]:  # pragma: no cover
        """The training targets of a batch, if its items carry them."""
        raise NotImplementedError

    def batches(self, items: Sequence[Item], batch_size: int) -> Iterator[Tuple[List[int], Dict]]:
        """(indices, batch on the model's device) over length-sorted items, for inference."""
        device = next(self.model.parameters()).device
        for indices, arrays in self.array_batches(items, batch_size):
            yield indices, {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}

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
    def from_pretrained(cls, name_or_path, revision: Optional[str] = None):
        """A saved model from a folder or a hub id; refuses other architectures and damaged files."""
        folder, data = cls._open_folder(name_or_path, revision)
        config = cls.config_class.from_dict(data)
        model = cls.model_class(config)
        load_state(model, read_weights(folder), folder)
        model.eval()
        return cls._assemble(model, folder)

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


def encode_split(task: TaskModel, dataset, encode_batch: Callable[[Dict], Dict], signature: str,
                 label_features: Dict[str, Any]) -> List[Item]:
    """``Dataset.map`` to ids (cached by datasets under a fingerprint of data and vocabulary).

    Output types are declared, not inferred: a first write batch whose lists are all empty would
    otherwise fix a column's type to null and fail on the next batch."""
    import datasets

    ids = datasets.Sequence(datasets.Value("int32"))
    nested = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
    known = {"words": ids, "bigrams": ids, "chars": nested, "oov": nested, **label_features}
    sample = encode_batch(dataset[:1])
    features = datasets.Features({name: known[name] for name in sample})
    fingerprint = hashlib.sha1(f"{dataset._fingerprint}-{signature}".encode()).hexdigest()
    mapped = dataset.map(encode_batch, batched=True, batch_size=2000, remove_columns=dataset.column_names,
                         new_fingerprint=fingerprint, features=features, desc="encoding")
    columns = {name: mapped[name] for name in mapped.column_names}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def fit(task: TaskModel, items: List[Item], evaluate: Callable[[], Dict[str, Any]], config: TrainingConfig,
        output_dir: Optional[str], resume: bool, accelerator=None):
    """Train ``task.model`` on encoded items with the shared Trainer; it ends with the best weights."""
    from torch.utils.data import DataLoader

    from ..training.trainer import Trainer

    sampler = BucketBatchSampler([len(it["words"]) for it in items], config.batch_size, shuffle=True,
                                 seed=config.seed)
    loader = DataLoader(items, batch_sampler=sampler, collate_fn=task.collate)

    def run_evaluation(model) -> Dict[str, Any]:
        task.model = model
        return evaluate()

    trainer = Trainer(task.model, config, loader, run_evaluation, output_dir, accelerator)
    result = trainer.fit(resume=resume)
    task.model = trainer.accelerator.unwrap_model(trainer.model)
    return result


def initial_embeddings(sentences: Sequence[Sequence[str]], embeddings: Optional[str], *,
                       extra_pretrained: int, lowercase: bool, word_dim: int, seed: int, min_freq: int = 1,
                       unicode_normalize: bool = False, embeddings_text: Optional[str] = None,
                       freeze: bool = False):
    """The word vocabulary and its initial vectors: (vocab, matrix or None, dim, trainable rows,
    fastText subword settings for the config, and the n-gram table or None).

    ``embeddings``: a vectors file (GloVe, word2vec, fastText), ``word2vec``/``fasttext`` to train
    them on ``sentences`` (plus the lines of ``embeddings_text``, unlabelled text of the same
    kind) with gensim, or None/``random`` for random vectors of ``word_dim``. ``freeze`` keeps every
    initialised vector fixed (only <pad>/<unk> train): often better on small corpora.
    """
    options = dict(lowercase=lowercase, unicode_normalize=unicode_normalize)
    vocab = WordVocab.build(sentences, min_freq=min_freq, **options)
    if embeddings in (None, "random"):
        return vocab, None, word_dim, len(vocab), {}, None
    from .. import embeddings as emb  # gensim is imported only when building from vectors

    normalised = [[vocab.normalize(w) for w in s] for s in sentences]
    training = {}
    if embeddings in ("word2vec", "fasttext"):
        training = dict(dim=word_dim, seed=seed)
        if embeddings_text:
            normalised += [[vocab.normalize(w) for w in s] for s in read_text_lines(embeddings_text)]
    vectors = emb.vectors_from_source(embeddings, corpus_sentences=normalised, **training)
    table = emb.build_embedding_matrix(vocab.words, vectors, train_counts=vocab.counts,
                                       extra_pretrained=extra_pretrained, seed=seed)
    vocab = WordVocab.from_words(table.words[2:], **options)
    subword_config, ngrams = {}, None
    if vectors.subwords is not None:  # fastText: carry the n-gram table for unseen words
        sub = vectors.subwords
        subword_config = dict(subword_buckets=sub["bucket"], subword_min_n=sub["min_n"], subword_max_n=sub["max_n"])
        ngrams = torch.from_numpy(sub["vectors_ngrams"])
    trainable = 2 if freeze else table.num_trainable
    return vocab, torch.from_numpy(table.matrix), table.matrix.shape[1], trainable, subword_config, ngrams


def read_text_lines(path) -> List[List[str]]:
    """Unlabelled text for training vectors: one sentence per line, pre-tokenized like the data
    (Chinese per character, so per-character tokens match a character-level corpus)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"expected UTF-8 text ({err})") from None
    return [[t for t, _ in pre_tokenize(line)] for line in lines if line.strip()]
