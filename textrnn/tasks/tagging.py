"""Sequence tagging as a user sees it: tokens in, tags out; build, train, evaluate, save, load.

``SequenceTagger`` joins the nn.Module (tensors only) with the vocabularies that turn strings into
ids, and knows how to batch. The recipe and the ``textrnn`` command both call these functions.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..config import TaggerConfig, TrainingConfig
from ..errors import DataFormatError
from ..hub import (CHARS_NAME, TOKENIZER_NAME, load_state, read_config, read_weights, resolve_folder,
                   write_model_folder)
from ..models.tagger import BiRNNTagger
from ..training.batching import BucketBatchSampler
from ..training.metrics import entity_scores
from ..vocab import CharVocab, WordVocab

logger = logging.getLogger(__name__)

ARCHITECTURE = "birnn-tagger/1"


class SequenceTagger:
    """``tagger.predict([["EU", "rejects", "German", "call"]])`` -> ``[["B-ORG", "O", "B-MISC", "O"]]``."""

    def __init__(self, model: BiRNNTagger, words: WordVocab, chars: Optional[CharVocab] = None):
        self.model = model
        self.words = words
        self.chars = chars
        self.config: TaggerConfig = model.config
        self.labels: List[str] = list(model.config.labels)

    # strings -> tensors ------------------------------------------------------------------------
    def encode(self, tokens: Sequence[str]) -> Dict[str, List]:
        item: Dict[str, List] = {"words": self.words.encode(tokens)}
        if self.chars is not None:
            n = self.config.max_word_length
            item["chars"] = [self.chars.encode_word(t, n) for t in tokens]
        return item

    def collate(self, items: Sequence[Dict[str, List]]) -> Dict[str, torch.Tensor]:
        """Pad a list of encoded sentences into one batch (see BiRNNTagger for the keys)."""
        lengths = [len(it["words"]) for it in items]
        if min(lengths) == 0:
            raise ValueError("cannot tag an empty sentence: every sentence needs at least one token")
        longest = max(lengths)
        batch = {
            "words": torch.tensor([it["words"] + [0] * (longest - n) for it, n in zip(items, lengths)]),
            "lengths": torch.tensor(lengths),
        }
        batch["mask"] = torch.arange(longest).unsqueeze(0) < batch["lengths"].unsqueeze(1)
        if self.chars is not None:
            # (real_tokens, word_len): only real tokens get character features
            flat = [w for it in items for w in it["chars"]]
            width = max(map(len, flat))
            batch["chars"] = torch.tensor([w + [0] * (width - len(w)) for w in flat])
        if "tags" in items[0]:
            batch["tags"] = torch.tensor([it["tags"] + [0] * (longest - n) for it, n in zip(items, lengths)])
        return batch

    # prediction --------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, sentences: Sequence[Sequence[str]], batch_size: int = 256,
                with_scores: bool = False):
        """Tags for each sentence (a list of tokens), in input order; with per-token confidences."""
        was_training = self.model.training
        self.model.eval()
        encoded = [self.encode(s) for s in sentences]
        tags: List[Optional[List[str]]] = [None] * len(encoded)
        scores: List[Optional[List[float]]] = [None] * len(encoded)
        sampler = BucketBatchSampler([len(e["words"]) for e in encoded], batch_size, shuffle=False)
        device = next(self.model.parameters()).device
        for indices in sampler:
            batch = {k: v.to(device) for k, v in self.collate([encoded[i] for i in indices]).items()}
            if with_scores:
                paths, probs = self.model.decode_with_scores(batch)
            else:
                paths, probs = self.model.decode(batch), None
            for j, i in enumerate(indices):
                tags[i] = [self.labels[t] for t in paths[j]]
                if probs is not None:
                    scores[i] = probs[j]
        self.model.train(was_training)
        return (tags, scores) if with_scores else tags

    def evaluate(self, dataset, batch_size: int = 256) -> Dict[str, Any]:
        """Entity P/R/F1 (conlleval and strict) against a Dataset with ``tokens`` and ``tags``."""
        names = dataset.features["tags"].feature.names
        gold = [[names[t] for t in row] for row in dataset["tags"]]
        pred = self.predict(dataset["tokens"], batch_size=batch_size)
        return entity_scores(gold, pred, self.config.scheme)

    # persistence -------------------------------------------------------------------------------
    def save_pretrained(self, path, card: Optional[str] = None) -> Path:
        """Write a hub-ready folder; loading it needs neither gensim nor the training corpus."""
        config = dict(self.config.to_dict(), task="token-classification",
                      lowercase=self.words.tokenizer.normalizer is not None)

        def extra(folder: Path) -> None:
            self.words.save(folder / TOKENIZER_NAME)
            if self.chars is not None:
                self.chars.save(folder / CHARS_NAME)

        return write_model_folder(path, config, self.model.state_dict(), extra, card)

    @classmethod
    def from_pretrained(cls, name_or_path, revision: Optional[str] = None) -> "SequenceTagger":
        folder = resolve_folder(name_or_path, revision)
        data = read_config(folder)
        if data["architecture"] != ARCHITECTURE:
            raise DataFormatError(folder / "config.json", None,
                                  f"unknown architecture {data['architecture']!r}; this textrnn "
                                  f"loads {ARCHITECTURE!r} taggers")
        data = {k: v for k, v in data.items() if k not in ("task", "lowercase", "metrics")}
        config = TaggerConfig.from_dict(data)
        words = WordVocab.load(folder / TOKENIZER_NAME)
        chars = CharVocab.load(folder / CHARS_NAME) if config.char_encoder != "none" else None
        model = BiRNNTagger(config)
        load_state(model, read_weights(folder), folder)
        model.eval()
        return cls(model, words, chars)


# building and training -----------------------------------------------------------------------
def build_tagger(train, *, embeddings: Optional[str] = None, extra_pretrained: int = 100_000,
                 lowercase: bool = True, word_dim: int = 100, seed: int = 42,
                 **config: Any) -> SequenceTagger:
    """A fresh tagger whose vocabularies come from ``train`` (a Dataset of tokens + tags).

    ``embeddings``: a vectors file (GloVe, word2vec, fastText), ``word2vec``/``fasttext`` to train
    them on the training tokens with gensim, or None for random vectors of ``word_dim``.
    """
    from .. import embeddings as emb  # gensim is imported only when building from vectors

    sentences = train["tokens"]
    labels = train.features["tags"].feature.names
    vocab = WordVocab.build(sentences, lowercase=lowercase)
    init = None
    if embeddings not in (None, "random"):
        vectors = emb.vectors_from_source(embeddings, corpus_sentences=sentences)
        table = emb.build_embedding_matrix(vocab.words, vectors, train_counts=vocab.counts,
                                           extra_pretrained=extra_pretrained, seed=seed)
        logger.info("%s", table.coverage)
        vocab = WordVocab.from_words(table.words[2:], lowercase=lowercase)
        init = torch.from_numpy(table.matrix)
        word_dim, num_trainable = table.matrix.shape[1], table.num_trainable
    else:
        num_trainable = len(vocab)
    chars = CharVocab.build(sentences) if config.get("char_encoder", "cnn") != "none" else None
    torch.manual_seed(seed)
    tagger_config = TaggerConfig(vocab_size=len(vocab), labels=tuple(labels), word_dim=word_dim,
                                 num_trainable_words=num_trainable,
                                 num_chars=len(chars) if chars else 0, **config)
    return SequenceTagger(BiRNNTagger(tagger_config, init), vocab, chars)


def encode_split(tagger: SequenceTagger, dataset) -> List[Dict[str, List]]:
    """Encode a Dataset split with ``Dataset.map`` (cached by datasets), then pull it into lists."""
    signature = hashlib.sha1(tagger.words.tokenizer.to_str().encode()
                             + repr(tagger.chars.chars if tagger.chars else None).encode()
                             + str(tagger.config.max_word_length).encode()).hexdigest()

    def encode_batch(batch):
        out = [tagger.encode(tokens) for tokens in batch["tokens"]]
        cols = {k: [o[k] for o in out] for k in out[0]}
        cols["tags"] = batch["tags"]
        return cols

    fingerprint = hashlib.sha1(f"{dataset._fingerprint}-{signature}".encode()).hexdigest()
    mapped = dataset.map(encode_batch, batched=True, batch_size=2000, remove_columns=dataset.column_names,
                         new_fingerprint=fingerprint, desc="encoding")
    columns = {name: mapped[name] for name in mapped.column_names}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def train_tagger(tagger: SequenceTagger, train, dev, config: TrainingConfig,
                 output_dir: Optional[str] = None, resume: bool = False, accelerator=None):
    """Train on ``train``, select the best epoch on ``dev`` F1; the tagger ends with its best weights."""
    from torch.utils.data import DataLoader

    from ..training.trainer import Trainer

    items = encode_split(tagger, train)
    sampler = BucketBatchSampler([len(it["words"]) for it in items], config.batch_size, shuffle=True,
                                 seed=config.seed)
    loader = DataLoader(items, batch_sampler=sampler, collate_fn=tagger.collate)

    def evaluate(model) -> Dict[str, Any]:
        tagger.model = model
        return tagger.evaluate(dev, batch_size=config.eval_batch_size)

    trainer = Trainer(tagger.model, config, loader, evaluate, output_dir, accelerator)
    result = trainer.fit(resume=resume)
    tagger.model = trainer.accelerator.unwrap_model(trainer.model)
    return result
