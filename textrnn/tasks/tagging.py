"""Sequence tagging as a user sees it: tokens in, tags out; build, train, evaluate, save, load.

``SequenceTagger`` joins the nn.Module (tensors only) with the vocabularies that turn strings into
ids, and knows how to batch. The recipe and the ``textrnn`` command both call these functions.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .. import tags as tag_schemes
from ..config import TaggerConfig, TrainingConfig
from ..frontend import TaggerFrontend
from ..hub import BIGRAMS_NAME, CHARS_NAME, LEXICON_NAME, TOKENIZER_NAME
from ..lexicon import Lexicon, load_model_lexicon
from ..models.tagger import BiRNNTagger
from ..errors import ConfigError, DataFormatError
from ..modules.embedding import check_bigram_init, init_bigrams_
from .base import (TaskModel, TokenStream, encode_dataset, initial_embeddings, label_index, lexicon_features,
                   padded, shard_map, warn_unknown)
from ..utils import has_float64
from ..vocab import BigramVocab, CharVocab, WordVocab


ARCHITECTURE = "birnn-tagger/1"
logger = logging.getLogger(__name__)


class SequenceTagger(TaskModel, TaggerFrontend):
    """``tagger.predict([["EU", "rejects", "German", "call"]])`` -> ``[["B-ORG", "O", "B-MISC", "O"]]``.

    Strings to arrays and decoding come from ``TaggerFrontend`` (shared with the ONNX backend);
    this class runs the torch module on the arrays."""

    architecture = ARCHITECTURE
    task = "token-classification"
    config_class = TaggerConfig
    model_class = BiRNNTagger

    def __init__(self, model: BiRNNTagger, words: WordVocab, chars: Optional[CharVocab] = None,
                 bigrams: Optional[BigramVocab] = None, lexicon: Optional[Lexicon] = None):
        self.model = model
        self.words = words
        self.chars = chars
        self.bigrams = bigrams
        self.lexicon = lexicon
        self.config: TaggerConfig = model.config
        self.labels: List[str] = list(model.config.labels)

    def collate_targets(self, items: Sequence[Dict[str, List]]) -> Dict[str, torch.Tensor]:
        """Gold ``tags`` (batch, seq) when the items carry them (training); see BiRNNTagger for the keys."""
        if "tags" not in items[0]:
            return {}
        return {"tags": padded([it["tags"] for it in items], max(len(it["tags"]) for it in items))}

    # decode with torch on the model's device (True), in numpy on the host (False), or (None) with torch
    # where the device is not the CPU: on the CPU numpy costs as much and gives the ONNX backend's scores
    # bit for bit. Not on Apple's MPS, which has no float64 for forward-backward: there the host decodes.
    device_decoding: Optional[bool] = None

    def emission_scores(self, arrays) -> np.ndarray:
        return self.run_module(self.model.emissions, arrays)

    def device_emission_scores(self, arrays) -> torch.Tensor:
        """(batch, seq, num_tags) float32, left on the model's device."""
        return self.run_module(self.model.emissions, arrays, to_host=False)

    def decoding(self):
        """On a GPU, the emissions stay there and are decoded there (``textrnn.decoding_torch``):
        only paths and probabilities come back to the host. On the CPU, the front end's numpy."""
        device = self.device
        if self.device_decoding is None:
            on_device = device.type != "cpu" and has_float64(device)
        elif self.device_decoding and not has_float64(device):
            raise ConfigError(f"device_decoding=True decodes in float64 on the model's device, which "
                              f"{device.type} lacks; leave it None (the host decodes there)")
        else:
            on_device = self.device_decoding
        if not on_device:
            return super().decoding()
        from ..decoding_torch import TorchCRFDecoder, TorchSoftmaxDecoder

        crf = self.model.crf
        if crf is None:
            return self.device_emission_scores, TorchSoftmaxDecoder()
        decoder = TorchCRFDecoder.for_labels(crf.transitions, crf.start_transitions, crf.end_transitions, self.labels,
                                             self.config.scheme, device=self.device)
        return self.device_emission_scores, decoder

    def crf_parameters(self):
        crf = self.model.crf
        if crf is None:
            return None
        return tuple(p.detach().float().cpu().numpy()
                     for p in (crf.transitions, crf.start_transitions, crf.end_transitions))

    def evaluate(self, dataset, batch_size: int = 256, report: bool = False, accelerator=None) -> Dict[str, Any]:
        """Entity P/R/F1 (conlleval and strict) against a Dataset with ``tokens`` and ``tags``; with
        ``report``, also seqeval's per-type table as text (one prediction pass for both). Under
        several processes each predicts its share and all score the gathered predictions.

        Gold tags in another scheme than the model's (a BIOES file for an IOB2 model) are converted;
        entity types the model was never trained on are counted, with a warning, as errors."""
        from ..data import dataset_scheme  # (imported here: loading a model for inference needs neither)
        from ..training.metrics import entity_report, entity_scores

        names = dataset.features["tags"].feature.names
        gold = [[names[t] for t in row] for row in dataset["tags"][:]]
        scheme, source = self.config.scheme, dataset_scheme(dataset)
        if source and source != scheme:
            try:
                gold = [tag_schemes.convert(g, source, scheme) for g in gold]
            except ValueError as err:
                raise DataFormatError(dataset_path(dataset), None, f"tags are {source} but the model predicts "
                                      f"{scheme} tags, and they do not convert ({err})") from None
            logger.info("%s: gold tags converted from %s to the model's %s", dataset_path(dataset), source, scheme)
        known = set(tag_schemes.entity_types(self.labels))
        unknown = Counter(t for g in gold for t, _, _ in tag_schemes.get_spans(g, scheme) if t not in known)
        warn_unknown("entity types", dict(unknown), dataset_path(dataset))
        pred = shard_map(lambda part: self.predict(part, batch_size=batch_size), dataset["tokens"][:], accelerator)
        scores = entity_scores(gold, pred, scheme)
        if unknown:
            scores["unknown_entities"] = dict(unknown)
        if report:
            scores["report"] = entity_report(gold, pred, scheme)
        return scores

    # persistence -------------------------------------------------------------------------------
    def encode_for_training(self, dataset):
        """Labelled rows as model inputs, in a (memory-mapped) Arrow table with a ``length`` column."""
        return encode_for_training(self, dataset)

    def vocabularies(self) -> Dict[str, Any]:
        return {TOKENIZER_NAME: self.words, CHARS_NAME: self.chars, BIGRAMS_NAME: self.bigrams,
                LEXICON_NAME: self.lexicon}

    @classmethod
    def _assemble(cls, model: BiRNNTagger, folder: Path) -> "SequenceTagger":
        config = model.config
        chars = CharVocab.load(folder / CHARS_NAME) if config.char_encoder != "none" else None
        bigrams = BigramVocab.load(folder / BIGRAMS_NAME) if config.bigram_vocab_size else None
        return cls(model, WordVocab.load(folder / TOKENIZER_NAME), chars, bigrams, load_model_lexicon(folder, config))


# building and training -----------------------------------------------------------------------
def dataset_path(dataset) -> str:
    """The file a split was read from, for messages ("<dataset>" for one built in code)."""
    from ..data import read_report

    return read_report(dataset).get("path") or "<dataset>"


def build_tagger(train, *, embeddings: Optional[str] = None, extra_pretrained: int = 100_000,
                 lowercase: bool = True, word_dim: int = 100, seed: int = 42, bigrams: bool = False,
                 scheme: Optional[str] = None, embeddings_text: Optional[str] = None,
                 freeze_embeddings: bool = False, trust_pickle: bool = False, lexicon: Optional[str] = None,
                 lexicon_weighting: str = "frequency", lexicon_vectors: str = "word2vec",
                 bigram_init: str = "normal", bigram_min_freq: int = 1, **config: Any) -> SequenceTagger:
    """A fresh tagger whose vocabularies and tags come from ``train`` (a Dataset of tokens + tags),
    read in batches so that a corpus larger than memory never is in memory.

    ``bigrams``: add an embedding of each token with the next (for character-level Chinese NER);
    ``bigram_init`` says how those vectors start (``textrnn.modules.embedding.init_bigrams_``), and
    bigrams seen fewer than ``bigram_min_freq`` times share the unknown row.
    ``scheme``: the tag scheme; by default the one the reader recorded, else read off the tags.
    ``lexicon``: ``jieba`` or a file of ``WORD [FREQUENCY]`` lines; each token then also sees the
    B/M/E/S sets of the lexicon words matching there (see ``textrnn.lexicon.build_lexicon_features``).
    The model's tags are those that occur in ``train``: a tag seen only in dev or test is not a class.
    """
    from ..data import dataset_scheme

    sentences = TokenStream(train, "tokens")
    names = train.features["tags"].feature.names
    seen = set()
    for row in TokenStream(train, "tags"):
        seen.update(row)
    labels = tag_schemes.sort_labels(names[i] for i in seen)
    words = initial_embeddings(
        sentences, embeddings, extra_pretrained=extra_pretrained, lowercase=lowercase, word_dim=word_dim,
        seed=seed, embeddings_text=embeddings_text, freeze=freeze_embeddings, trust_pickle=trust_pickle)
    chars = CharVocab.build(sentences) if config.get("char_encoder", "cnn") != "none" else None
    check_bigram_init(bigram_init)
    pairs = BigramVocab.build(sentences, min_freq=bigram_min_freq) if bigrams else None
    lex, lexicon_init = None, None
    if lexicon:
        lex, lexicon_init = lexicon_features(lexicon, sentences, config, weighting=lexicon_weighting,
                                             vectors=lexicon_vectors, embeddings_text=embeddings_text, seed=seed)
    torch.manual_seed(seed)
    scheme = scheme or dataset_scheme(train) or tag_schemes.infer_scheme(labels)
    tagger_config = TaggerConfig(labels=tuple(labels), num_chars=len(chars) if chars else 0,
                                 bigram_vocab_size=len(pairs) if pairs else 0, scheme=scheme,
                                 **words.config(), **config)
    model = BiRNNTagger(tagger_config, words.matrix, words.ngrams, lexicon_init)
    if model.bigrams is not None:
        init_bigrams_(model.bigrams, bigram_init)
    return SequenceTagger(model, words.vocab, chars, pairs, lex)


def encode_for_training(tagger: SequenceTagger, dataset):
    """The tagged sentences as model inputs in an Arrow table (see ``encode_dataset``)."""
    signature = hashlib.sha1(tagger.words.tokenizer.to_str().encode()
                             + repr(tagger.chars.chars if tagger.chars else None).encode()
                             + repr(tagger.bigrams.bigrams if tagger.bigrams else None).encode()
                             + "\n".join(tagger.lexicon.words if tagger.lexicon else []).encode()
                             + repr(tagger.config.to_dict()).encode()).hexdigest()
    names = dataset.features["tags"].feature.names
    index = label_index(names, tagger.labels)
    missing = [n for n, i in zip(names, index) if i < 0]

    def encode_batch(batch):
        out = [tagger.encode(tokens) for tokens in batch["tokens"]]
        cols = {k: [o[k] for o in out] for k in out[0]}
        cols["tags"] = [[index[t] for t in row] for row in batch["tags"]]
        if missing and any(t < 0 for row in cols["tags"] for t in row):
            raise DataFormatError(dataset_path(dataset), None, f"training tags {missing} are not among the "
                                  f"model's tags ({', '.join(tagger.labels)})")
        return cols

    import datasets

    tags = datasets.Sequence(datasets.Value("int32"))
    lexicon = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
    return encode_dataset(tagger, dataset, encode_batch, signature, {"tags": tags, "lexicon": lexicon})


def train_tagger(tagger: SequenceTagger, train, dev, config: TrainingConfig,
                 output_dir: Optional[str] = None, resume: bool = False, accelerator=None):
    """Train on ``train``, select the best epoch on ``dev`` F1; the tagger ends with its best weights."""
    from ..runs import train_model

    return train_model(tagger, train, dev, config, output_dir=output_dir, resume=resume, accelerator=accelerator)
