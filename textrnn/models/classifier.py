"""BiLSTM/BiGRU text classifier: tokens -> embeddings -> encoder -> pooling -> dropout -> logits."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ClassifierConfig
from ..modules.embedding import WordEmbedding
from ..modules.encoder import BiRNNEncoder
from ..modules.lexicon import LexiconEmbedding
from ..modules.pooling import pooling

Batch = Dict[str, torch.Tensor]


class BiRNNClassifier(nn.Module):
    """Single-label (softmax) or multi-label (sigmoid, a threshold per label) classification.

    A batch holds ``words`` (batch, seq), ``lengths`` (batch,), ``mask`` (batch, seq), ``bigrams``
    (batch, seq) and ``lexicon`` (batch, seq, k) codes where the config has them, and, for
    training, ``labels``: (batch,) ids, or (batch, num_labels) 0/1 for multi-label.
    ``lexicon``: the lexicon's entry weights, entry rows and initial vectors (``LexiconFeatures``).
    """

    def __init__(self, config: ClassifierConfig, embeddings: Optional[torch.Tensor] = None,
                 ngrams: Optional[torch.Tensor] = None, lexicon: Optional[Tuple] = None):
        super().__init__()
        self.config = config
        self.words = WordEmbedding(config.vocab_size, config.word_dim, config.num_trainable_words, embeddings,
                                   config.subword_buckets, ngrams)
        self.bigrams = None
        if config.bigram_vocab_size:
            self.bigrams = nn.Embedding(config.bigram_vocab_size, config.bigram_dim, padding_idx=0)
        self.lexicon = None
        if config.lexicon_size:
            self.lexicon = LexiconEmbedding(config.lexicon_size, config.lexicon_rows, config.lexicon_dim,
                                            config.lexicon_trainable, *(lexicon or ()))
        self.dropout = nn.Dropout(config.dropout)
        self.input_dropout = nn.Dropout(config.dropout if config.input_dropout is None else config.input_dropout)
        input_size = (config.word_dim + (config.bigram_dim if config.bigram_vocab_size else 0)
                      + (self.lexicon.output_size if self.lexicon is not None else 0))
        self.encoder = BiRNNEncoder(input_size, config.hidden_size, config.num_layers, config.rnn, config.dropout)
        self.pool = pooling(config.pooling, self.encoder.output_size)
        self.out = nn.Linear(self.encoder.output_size, config.num_labels)
        weights = torch.tensor(config.class_weights) if config.class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        thresholds = config.thresholds or (0.5,) * config.num_labels
        self.register_buffer("thresholds", torch.tensor(thresholds), persistent=False)

    def logits(self, batch: Batch) -> torch.Tensor:
        words = batch["words"]  # (batch, seq)
        if self.training and self.config.word_dropout:  # whole tokens become <unk> (id 1; 0 pads)
            drop = (torch.rand(words.shape, device=words.device) < self.config.word_dropout) & (words > 0)
            words = words.masked_fill(drop, 1)
        x = self.words(words, batch.get("oov_positions"), batch.get("oov_buckets"))
        if self.bigrams is not None:
            x = torch.cat([x, self.bigrams(batch["bigrams"])], dim=-1)  # (batch, seq, word_dim + bigram_dim)
        if self.lexicon is not None:
            x = torch.cat([x, self.lexicon(batch["lexicon"]).to(x.dtype)], dim=-1)  # (batch, seq, ... + 4 * lexicon_dim)
        x = self.input_dropout(x)  # (batch, seq, input)
        h = self.encoder(x, batch["lengths"])  # (batch, seq, 2 * hidden)
        return self.out(self.dropout(self.pool(h, batch["mask"])))  # (batch, num_labels)

    loss_reduction = "mean"  # the trainer divides the summed loss by the global batch size

    def forward(self, batch: Batch) -> torch.Tensor:
        """The training loss; the trainer calls the module, as DDP needs."""
        return self.loss(batch)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Summed over the texts of the batch (multi-label: each text's mean over its labels)."""
        logits = self.logits(batch)  # (batch, num_labels)
        if self.config.multi_label:
            per_label = F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].float(),
                                                           pos_weight=self.class_weights, reduction="none")
            return per_label.mean(dim=1).sum()
        return F.cross_entropy(logits.float(), batch["labels"], weight=self.class_weights, reduction="sum")

    def probabilities(self, batch: Batch) -> torch.Tensor:
        """(batch, num_labels): softmax for single-label, independent sigmoids for multi-label."""
        logits = self.logits(batch)
        return logits.sigmoid() if self.config.multi_label else logits.softmax(dim=-1)
