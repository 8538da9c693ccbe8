"""Sequence tagging as a user sees it: tokens in, tags out; build, train, evaluate, save, load.

``SequenceTagger`` joins the nn.Module (tensors only) with the vocabularies that turn strings into
ids, and knows how to batch. The recipe and the ``textrnn`` command both call these functions.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .. import tags as tag_schemes
from ..config import TaggerConfig, TrainingConfig
from ..frontend import TaggerFrontend
from ..hub import BIGRAMS_NAME, CHARS_NAME, TOKENIZER_NAME
from ..models.tagger import BiRNNTagger
from .base import TaskModel, encode_split, fit, initial_embeddings, padded
from ..vocab import BigramVocab, CharVocab, WordVocab


ARCHITECTURE = "birnn-tagger/1"


class SequenceTagger(TaskModel, TaggerFrontend):
    """``tagger.predict([["EU", "rejects", "German", "call"]])`` -> ``[["B-ORG", "O", "B-MISC", "O"]]``.

    Strings to arrays and decoding come from ``TaggerFrontend`` (shared with the ONNX backend);
    this class runs the torch module on the arrays."""

    architecture = ARCHITECTURE
    task = "token-classification"
    config_class = TaggerConfig
    model_class = BiRNNTagger

    def __init__(self, model: BiRNNTagger, words: WordVocab, chars: Optional[CharVocab] = None,
                 bigrams: Optional[BigramVocab] = None):
        self.model = model
        self.words = words
        self.chars = chars
        self.bigrams = bigrams
        self.config: TaggerConfig = model.config
        self.labels: List[str] = list(model.config.labels)

    def collate_targets(self, items: Sequence[Dict[str, List]]) -> Dict[str, torch.Tensor]:
        """Gold ``tags`` (batch, seq) when the items carry them (training); see BiRNNTagger for the keys."""
        if "tags" not in items[0]:
            return {}
        return {"tags": padded([it["tags"] for it in items], max(len(it["tags"]) for it in items))}

    def emission_scores(self, arrays) -> np.ndarray:
        return self.run_module(self.model.emissions, arrays)

    def crf_parameters(self):
        crf = self.model.crf
        if crf is None:
            return None
        return tuple(p.detach().float().cpu().numpy()
                     for p in (crf.transitions, crf.start_transitions, crf.end_transitions))

    # persistence -------------------------------------------------------------------------------
    def vocabularies(self) -> Dict[str, Any]:
        return {TOKENIZER_NAME: self.words, CHARS_NAME: self.chars, BIGRAMS_NAME: self.bigrams}

    @classmethod
    def _assemble(cls, model: BiRNNTagger, folder: Path) -> "SequenceTagger":
        config = model.config
        chars = CharVocab.load(folder / CHARS_NAME) if config.char_encoder != "none" else None
        bigrams = BigramVocab.load(folder / BIGRAMS_NAME) if config.bigram_vocab_size else None
        return cls(model, WordVocab.load(folder / TOKENIZER_NAME), chars, bigrams)


# building and training -----------------------------------------------------------------------
def build_tagger(train, *, embeddings: Optional[str] = None, extra_pretrained: int = 100_000,
                 lowercase: bool = True, word_dim: int = 100, seed: int = 42, bigrams: bool = False,
                 scheme: Optional[str] = None, embeddings_text: Optional[str] = None,
                 freeze_embeddings: bool = False, **config: Any) -> SequenceTagger:
    """A fresh tagger whose vocabularies come from ``train`` (a Dataset of tokens + tags).

    ``bigrams``: add an embedding of each token with the next (for character-level Chinese NER).
    ``scheme``: the tag scheme; by default read from the data (IOB2 for B-/I- tags, BMES, ...).
    """
    sentences = train["tokens"]
    labels = train.features["tags"].feature.names
    vocab, init, word_dim, num_trainable, subwords, ngrams = initial_embeddings(
        sentences, embeddings, extra_pretrained=extra_pretrained, lowercase=lowercase, word_dim=word_dim,
        seed=seed, embeddings_text=embeddings_text, freeze=freeze_embeddings)
    chars = CharVocab.build(sentences) if config.get("char_encoder", "cnn") != "none" else None
    pairs = BigramVocab.build(sentences) if bigrams else None
    torch.manual_seed(seed)
    tagger_config = TaggerConfig(vocab_size=len(vocab), labels=tuple(labels), word_dim=word_dim,
                                 num_trainable_words=num_trainable, num_chars=len(chars) if chars else 0,
                                 bigram_vocab_size=len(pairs) if pairs else 0,
                                 scheme=scheme or tag_schemes.infer_scheme(labels), **subwords, **config)
    return SequenceTagger(BiRNNTagger(tagger_config, init, ngrams), vocab, chars, pairs)


def train_tagger(tagger: SequenceTagger, train, dev, config: TrainingConfig,
                 output_dir: Optional[str] = None, resume: bool = False, accelerator=None):
    """Train on ``train``, select the best epoch on ``dev`` F1; the tagger ends with its best weights."""
    signature = hashlib.sha1(tagger.words.tokenizer.to_str().encode()
                             + repr(tagger.chars.chars if tagger.chars else None).encode()
                             + repr(tagger.bigrams.bigrams if tagger.bigrams else None).encode()
                             + repr(tagger.config.to_dict()).encode()).hexdigest()

    def encode_batch(batch):
        out = [tagger.encode(tokens) for tokens in batch["tokens"]]
        cols = {k: [o[k] for o in out] for k in out[0]}
        cols["tags"] = batch["tags"]
        return cols

    items = encode_split(tagger, train, encode_batch, signature, {"tags": train.features["tags"]})
    return fit(tagger, items, lambda: tagger.evaluate(dev, batch_size=config.eval_batch_size), config,
               output_dir, resume, accelerator)


def finish_tagging_run(tagger: SequenceTagger, result, tests: Dict[str, Any], args, recipe: str,
                       dataset: str) -> Dict[str, Any]:
    """Save the model, score each test set (``{"test": ds, "conllpp_test": ds}``), write results.json
    and the model card, drop the resume checkpoint, and print the one JSON line scripts read."""
    import json
    import time

    from ..hub import write_model_card
    from ..options import training_config
    from ..training.trainer import remove_checkpoint
    from ..utils import atomic_write_text

    out = Path(args.output_dir)
    tagger.save_pretrained(out)
    c = tagger.config
    results: Dict[str, Any] = {
        "recipe": recipe, "rnn": c.rnn, "crf": c.use_crf, "char_features": c.char_encoder,
        "bigrams": bool(c.bigram_vocab_size), "embeddings": Path(args.embeddings).name if args.embeddings else "random",
        "dev_f1": round(result.best_score, 2), "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "stopped": result.stopped,
    }
    scores = {}
    for name, data in tests.items():
        start = time.perf_counter()
        scores[name] = tagger.evaluate(data)
        seconds = time.perf_counter() - start
        results[f"{name}_f1"] = round(scores[name]["f1"], 2)
        if name == "test":
            results.update({f"test_{k}": round(scores[name][k], 2) for k in ("strict_f1", "precision", "recall")})
            results["test_sentences_per_second"] = round(len(data) / seconds)
    results.update(train_seconds=round(result.train_seconds, 1), seed=args.seed, output_dir=str(out))
    results["command"] = " ".join(["python"] + sys.argv)  # what to run to get these figures again
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    test = scores["test"]
    write_model_card(out, "token-classification", dataset=dataset,
                     metrics={k: test[k] for k in ("f1", "precision", "recall", "strict_f1")},
                     training={**training_config(args).to_dict(), "embeddings": results["embeddings"]})
    remove_checkpoint(out)
    print(json.dumps(results, ensure_ascii=False), flush=True)
    return results
