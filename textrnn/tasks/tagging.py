"""Sequence tagging as a user sees it: tokens in, tags out; build, train, evaluate, save, load.

``SequenceTagger`` joins the nn.Module (tensors only) with the vocabularies that turn strings into
ids, and knows how to batch. The recipe and the ``textrnn`` command both call these functions.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .. import tags as tag_schemes
from ..config import TaggerConfig, TrainingConfig
from ..hub import BIGRAMS_NAME, CHARS_NAME, LEXICON_NAME, TOKENIZER_NAME
from ..lexicon import Lexicon
from ..models.tagger import BiRNNTagger
from ..training.metrics import entity_report, entity_scores
from ..data import dataset_scheme
from ..errors import DataFormatError
from .base import (TaskModel, TokenStream, encode_dataset, initial_embeddings, label_index, padded, read_text_lines,
                   shard_map, warn_unknown)
from ..vocab import BigramVocab, CharVocab, WordVocab


ARCHITECTURE = "birnn-tagger/1"
logger = logging.getLogger(__name__)


class SequenceTagger(TaskModel):
    """``tagger.predict([["EU", "rejects", "German", "call"]])`` -> ``[["B-ORG", "O", "B-MISC", "O"]]``."""

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

    # strings -> tensors ------------------------------------------------------------------------
    def encode(self, tokens: Sequence[str]) -> Dict[str, List]:
        item = self.encode_words(tokens)
        if self.bigrams is not None:
            item["bigrams"] = self.bigrams.encode(tokens)
        if self.chars is not None:
            n = self.config.max_word_length
            item["chars"] = [self.chars.encode_word(t, n) for t in tokens]
        if self.lexicon is not None:  # per token, the codes of its B/M/E/S lexicon words
            item["lexicon"] = self.lexicon.codes(tokens)
        return item

    def collate(self, items: Sequence[Dict[str, List]]) -> Dict[str, torch.Tensor]:
        """Pad a list of encoded sentences into one batch (see BiRNNTagger for the keys)."""
        if any(not it["words"] for it in items):
            raise ValueError("cannot tag an empty sentence: every sentence needs at least one token")
        batch = self.collate_words(items)
        longest = batch["words"].size(1)
        if self.bigrams is not None:
            batch["bigrams"] = padded([it["bigrams"] for it in items], longest)
        if self.chars is not None:
            # (real_tokens, word_len): only real tokens get character features
            flat = [w for it in items for w in it["chars"]]
            batch["chars"] = padded(flat, max(map(len, flat)))
        if self.lexicon is not None:
            batch["lexicon"] = padded_codes([it["lexicon"] for it in items], longest)
        if "tags" in items[0]:
            batch["tags"] = padded([it["tags"] for it in items], longest)
        return batch

    # prediction --------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, sentences: Sequence[Sequence[str]], batch_size: int = 256,
                with_scores: bool = False):
        """Tags for each sentence (a list of tokens), in input order; with per-token confidences."""
        results = self._decode(sentences, batch_size, scores=with_scores, spans=False)
        tags = [r[0] for r in results]
        return (tags, [r[1] for r in results]) if with_scores else tags

    @torch.inference_mode()
    def predict_entities(self, sentences: Sequence[Sequence[str]], batch_size: int = 256):
        """Per sentence: (tags, token scores, [(label, first, end, span probability)]); end is exclusive."""
        return self._decode(sentences, batch_size, scores=True, spans=True)

    def _decode(self, sentences, batch_size: int, scores: bool, spans: bool) -> List[Tuple]:
        was_training = self.model.training
        self.model.eval()
        # a datasets Column decodes row by row when iterated: one bulk conversion is ~10x cheaper
        encoded = [self.encode(s) for s in list(sentences)]
        results: List[Optional[Tuple]] = [None] * len(encoded)
        with self.autocast():
            for indices, batch in self.batches(encoded, batch_size):
                self._decode_batch(indices, batch, results, scores, spans)
        self.model.train(was_training)
        return results

    def _decode_batch(self, indices: List[int], batch, results: List, scores: bool, spans: bool) -> None:
        """Fill ``results[i]`` with (tags, token scores or None, spans or None) for one batch."""
        labels, scheme = self.labels, self.config.scheme
        if not scores:
            for j, path in zip(indices, self.model.decode(batch)):
                results[j] = ([labels[t] for t in path], None, None)
            return
        state, paths, probs = self.model.posteriors(batch)
        index = padded(paths, probs.size(1)).to(probs.device)  # (batch, seq): built on the host, used where probs live
        picked = probs.float().gather(2, index.unsqueeze(2)).squeeze(2).tolist()
        found = []
        for row, (j, path) in enumerate(zip(indices, paths)):
            tags = [labels[t] for t in path]
            results[j] = (tags, picked[row][: len(path)], [])
            if spans:
                for label, first, end in tag_schemes.get_spans(tags, scheme):
                    found.append((j, label, first, end, (row, first, path[first:end], self._extends[label])))
        if found:
            values = self.model.span_probabilities(state, probs, [f[4] for f in found])
            for (j, label, first, end, _), value in zip(found, values):
                results[j][2].append((label, first, end, value))

    @property
    def _extends(self) -> Dict[str, List[int]]:
        """Per entity type, the tag ids that would extend a span of that type (I-, M-, E-)."""
        if not hasattr(self, "_extends_cache"):
            table: Dict[str, List[int]] = {}
            for i, label in enumerate(self.labels):
                if label[:2] in ("I-", "M-", "E-"):
                    table.setdefault(label[2:], []).append(i)
            types = {label[2:] for label in self.labels if label != "O"}
            self._extends_cache = {t: table.get(t, []) for t in types}
        return self._extends_cache

    def evaluate(self, dataset, batch_size: int = 256, report: bool = False, accelerator=None) -> Dict[str, Any]:
        """Entity P/R/F1 (conlleval and strict) against a Dataset with ``tokens`` and ``tags``; with
        ``report``, also seqeval's per-type table as text (one prediction pass for both). Under
        several processes each predicts its share and all score the gathered predictions.

        Gold tags in another scheme than the model's (a BIOES file for an IOB2 model) are converted;
        entity types the model was never trained on are counted, with a warning, as errors."""
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
        lexicon = Lexicon.load(folder / LEXICON_NAME) if config.lexicon_size else None
        if lexicon is not None and len(lexicon) != config.lexicon_size:
            raise DataFormatError(folder / LEXICON_NAME, None, f"holds {len(lexicon) - 1} words but config.json "
                                  f"says lexicon_size {config.lexicon_size} (entries, padding included)")
        return cls(model, WordVocab.load(folder / TOKENIZER_NAME), chars, bigrams, lexicon)


def padded_codes(rows: Sequence[Sequence[Sequence[int]]], longest: int) -> torch.Tensor:
    """Per sentence, per token, lexicon codes -> (batch, longest, most codes at a token), 0-padded."""
    k = max((len(codes) for row in rows for codes in row), default=0) or 1
    empty = [0] * k
    return torch.tensor([[list(c) + [0] * (k - len(c)) for c in row] + [empty] * (longest - len(row))
                         for row in rows], dtype=torch.long)


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
                 **config: Any) -> SequenceTagger:
    """A fresh tagger whose vocabularies and tags come from ``train`` (a Dataset of tokens + tags),
    read in batches so that a corpus larger than memory never is in memory.

    ``bigrams``: add an embedding of each token with the next (for character-level Chinese NER).
    ``scheme``: the tag scheme; by default the one the reader recorded, else read off the tags.
    ``lexicon``: ``jieba`` or a file of ``WORD [FREQUENCY]`` lines; each token then also sees the
    B/M/E/S sets of the lexicon words matching there (see ``textrnn.lexicon.build_lexicon_features``).
    The model's tags are those that occur in ``train``: a tag seen only in dev or test is not a class.
    """
    sentences = TokenStream(train, "tokens")
    names = train.features["tags"].feature.names
    seen = set()
    for row in TokenStream(train, "tags"):
        seen.update(row)
    labels = tag_schemes.sort_labels(names[i] for i in seen)
    vocab, init, word_dim, num_trainable, subwords, ngrams = initial_embeddings(
        sentences, embeddings, extra_pretrained=extra_pretrained, lowercase=lowercase, word_dim=word_dim,
        seed=seed, embeddings_text=embeddings_text, freeze=freeze_embeddings, trust_pickle=trust_pickle)
    chars = CharVocab.build(sentences) if config.get("char_encoder", "cnn") != "none" else None
    pairs = BigramVocab.build(sentences) if bigrams else None
    lex, lexicon_init = None, None
    if lexicon:
        from ..lexicon import build_lexicon_features

        extra = read_text_lines(embeddings_text) if embeddings_text else []
        feats = build_lexicon_features(lexicon, sentences, dim=config.get("lexicon_dim", 50), weighting=lexicon_weighting,
                                       vectors=lexicon_vectors, extra_sentences=extra, seed=seed)
        lex = feats.lexicon
        lexicon_init = (torch.tensor(feats.weights), torch.tensor(feats.rows, dtype=torch.int32), feats.vectors)
        config.update(lexicon_size=len(lex), lexicon_rows=feats.num_rows, lexicon_trainable=feats.num_trainable)
    torch.manual_seed(seed)
    scheme = scheme or dataset_scheme(train) or tag_schemes.infer_scheme(labels)
    tagger_config = TaggerConfig(vocab_size=len(vocab), labels=tuple(labels), word_dim=word_dim,
                                 num_trainable_words=num_trainable, num_chars=len(chars) if chars else 0,
                                 bigram_vocab_size=len(pairs) if pairs else 0, scheme=scheme, **subwords, **config)
    return SequenceTagger(BiRNNTagger(tagger_config, init, ngrams, lexicon_init), vocab, chars, pairs, lex)


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
