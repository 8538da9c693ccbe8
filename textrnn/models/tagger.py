"""BiLSTM/BiGRU sequence tagger: words (+ characters) -> encoder -> emissions -> CRF or softmax.

Inference decodes the emissions with textrnn.decoding (numpy, shared with the ONNX backend);
``decode`` here is the torch reference."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TaggerConfig
from ..modules.chars import char_encoder
from ..modules.crf import CRF
from ..modules.embedding import WordEmbedding
from ..modules.lexicon import LexiconEmbedding
from ..modules.encoder import BiRNNEncoder
from .. import tags as tag_schemes

Batch = Dict[str, torch.Tensor]


def crf_constraints(labels, scheme: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Allowed transitions, starts and ends of the tag scheme, as bool tensors for the CRF."""
    allowed, start, end = tag_schemes.allowed_transitions(list(labels), scheme)
    return (torch.tensor(allowed, dtype=torch.bool), torch.tensor(start, dtype=torch.bool),
            torch.tensor(end, dtype=torch.bool))


class BiRNNTagger(nn.Module):
    """One frozen config builds it; ``loss(batch)`` trains it and ``decode(batch)`` tags with it.

    A batch holds ``words`` (batch, seq), ``lengths`` (batch,), ``mask`` (batch, seq), ``chars``
    (words, word_len) for each distinct word of the batch with ``char_index`` (batch, seq) its row
    for each position (padding: ``len(chars)``), ``lexicon`` (batch, seq, k) codes of the lexicon
    words at each token when the config has a lexicon, and for training ``tags``.

    ``lexicon``: the lexicon's entry weights, entry rows and initial vectors (``LexiconFeatures``).
    """

    def __init__(self, config: TaggerConfig, embeddings: Optional[torch.Tensor] = None,
                 ngrams: Optional[torch.Tensor] = None, lexicon: Optional[Tuple] = None):
        super().__init__()
        self.config = config
        self.words = WordEmbedding(config.vocab_size, config.word_dim, config.num_trainable_words,
                                   embeddings, config.subword_buckets, ngrams)
        self.chars = char_encoder(config.char_encoder, config.num_chars, config.char_dim,
                                  config.char_filters, config.char_kernel)
        self.bigrams = None
        if config.bigram_vocab_size:
            self.bigrams = nn.Embedding(config.bigram_vocab_size, config.bigram_dim, padding_idx=0)
        self.lexicon = None
        if config.lexicon_size:
            self.lexicon = LexiconEmbedding(config.lexicon_size, config.lexicon_rows, config.lexicon_dim,
                                            config.lexicon_trainable, *(lexicon or ()))
        input_size = (config.word_dim + (self.chars.output_size if self.chars is not None else 0)
                      + (config.bigram_dim if self.bigrams is not None else 0)
                      + (self.lexicon.output_size if self.lexicon is not None else 0))
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = BiRNNEncoder(input_size, config.hidden_size, config.num_layers, config.rnn,
                                    config.dropout)
        self.proj = nn.Linear(self.encoder.output_size, config.num_tags)
        self.crf = None
        if config.use_crf:
            constraints = crf_constraints(config.labels, config.scheme) if config.labels else (None,) * 3
            self.crf = CRF(config.num_tags, *constraints)

    def emissions(self, batch: Batch) -> torch.Tensor:
        words = batch["words"]
        x = self.words(words, batch.get("oov_positions"), batch.get("oov_buckets"))  # (batch, seq, word_dim)
        if self.bigrams is not None:
            x = torch.cat([x, self.bigrams(batch["bigrams"])], dim=-1)  # (batch, seq, word_dim + bigram_dim)
        if self.lexicon is not None:
            x = torch.cat([x, self.lexicon(batch["lexicon"]).to(x.dtype)], dim=-1)  # (batch, seq, ... + 4 * lexicon_dim)
        if self.chars is not None:
            feats = self.chars(batch["chars"])  # (distinct words, char_features)
            feats = torch.cat([feats, feats.new_zeros(1, feats.size(1))])  # + a zero row for padding
            x = torch.cat([x, feats[batch["char_index"]].to(x.dtype)], dim=-1)  # (batch, seq, input)
        h = self.encoder(self.dropout(x), batch["lengths"])  # (batch, seq, 2 * hidden)
        return self.proj(self.dropout(h))  # (batch, seq, num_tags)

    loss_reduction = "sum"  # the objective is the sum over the global batch (as Ma and Hovy)

    def forward(self, batch: Batch) -> torch.Tensor:
        """The training loss; the trainer calls the module so that DDP sees the forward pass."""
        return self.loss(batch)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Negative log-likelihood summed over the sentences of the batch (as Ma and Hovy)."""
        emissions, mask, gold = self.emissions(batch), batch["mask"], batch["tags"]
        if self.crf is not None:
            return self.crf(emissions, gold, mask, reduction="sum")
        return F.cross_entropy(emissions[mask].float(), gold[mask], reduction="sum")

    def decode(self, batch: Batch) -> List[List[int]]:
        """The best tag ids of each sentence (Viterbi under the scheme's constraints, or argmax)."""
        emissions, mask = self.emissions(batch), batch["mask"]
        if self.crf is not None:
            return self.crf.decode(emissions, mask)
        best = emissions.argmax(dim=-1)  # (batch, seq)
        return [row[:n].tolist() for row, n in zip(best, batch["lengths"].tolist())]
