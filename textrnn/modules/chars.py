"""Character features of words: a CNN (Ma and Hovy, 2016) or a BiLSTM (Lample et al., 2016)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class CharCNN(nn.Module):
    """Embeds each character, convolves, and max-pools over the real characters of each word."""

    def __init__(self, num_chars: int, char_dim: int = 30, filters: int = 30, kernel: int = 3):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        nn.init.uniform_(self.embedding.weight, -(3.0 / char_dim) ** 0.5, (3.0 / char_dim) ** 0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.conv = nn.Conv1d(char_dim, filters, kernel, padding=kernel // 2)
        self.output_size = filters

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        # chars: (words, max_len) ids, 0 = padding; every word has at least one character
        x = self.embedding(chars).transpose(1, 2)  # (words, char_dim, max_len)
        h = self.conv(x)  # (words, filters, max_len)
        pad = (chars == 0).unsqueeze(1)  # (words, 1, max_len)
        # padding positions must not win the max, or a word's features would depend on its batch
        return h.masked_fill(pad, float("-inf")).max(dim=2).values  # (words, filters)


class CharLSTM(nn.Module):
    """A BiLSTM over each word's characters; the final states of both directions, concatenated."""

    def __init__(self, num_chars: int, char_dim: int = 25, hidden: int = 25):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, hidden, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        lengths = (chars != 0).sum(dim=1).clamp(min=1)  # (words,)
        packed = pack_padded_sequence(self.embedding(chars), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h: (2, words, hidden)
        return torch.cat([h[0], h[1]], dim=-1)  # (words, 2 * hidden)


def char_encoder(kind: str, num_chars: int, char_dim: int, filters: int, kernel: int):
    """The registry of character encoders; ``none`` gives no module."""
    if kind == "cnn":
        return CharCNN(num_chars, char_dim, filters, kernel)
    if kind == "lstm":
        return CharLSTM(num_chars, char_dim, filters)
    return None
