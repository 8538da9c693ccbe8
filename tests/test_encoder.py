"""The direction-split encoder equals a packed bidirectional nn.LSTM / nn.GRU; frozen embedding rows
never move in training while the trained ones do."""
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn.config import TaggerConfig
from textrnn.models.tagger import BiRNNTagger
from textrnn.modules.embedding import WordEmbedding
from textrnn.modules.encoder import BiRNNEncoder, reverse_within_length


def packed_twin(encoder: BiRNNEncoder, rnn: str, input_size: int, hidden: int, layers: int) -> nn.Module:
    """A packed bidirectional RNN with the encoder's weights: layer i forward from forward_rnns[i],
    backward (the ``_reverse`` parameters) from backward_rnns[i]."""
    twin = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn](input_size, hidden, num_layers=layers, batch_first=True,
                                                 bidirectional=True)
    with torch.no_grad():
        for i, (fwd, bwd) in enumerate(zip(encoder.forward_rnns, encoder.backward_rnns)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(twin, f"{name}_l{i}").copy_(getattr(fwd, f"{name}_l0"))
                getattr(twin, f"{name}_l{i}_reverse").copy_(getattr(bwd, f"{name}_l0"))
    return twin


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 3])
def test_split_encoder_equals_a_packed_bidirectional_rnn(rnn, layers):
    torch.manual_seed(0)
    input_size, hidden = 5, 4
    encoder = BiRNNEncoder(input_size, hidden, num_layers=layers, rnn=rnn, dropout=0.3).eval()
    twin = packed_twin(encoder, rnn, input_size, hidden, layers).eval()
    lengths = torch.tensor([7, 1, 4, 7, 2])
    x = torch.randn(len(lengths), int(lengths.max()), input_size)  # (batch, seq, input)
    padding = torch.arange(x.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)  # (batch, seq)
    x[padding] = 100.0  # junk in the padding must not reach the real positions
    with torch.no_grad():
        split = encoder(x, lengths)  # (batch, seq, 2 * hidden)
        packed, _ = twin(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        reference, _ = pad_packed_sequence(packed, batch_first=True)  # (batch, seq, 2 * hidden)
    real = ~padding
    assert split.shape == reference.shape == (len(lengths), x.size(1), 2 * hidden)
    torch.testing.assert_close(split[real], reference[real], rtol=0, atol=1e-6)
    assert split[real].abs().max() > 0.05  # not trivially small outputs


def test_reverse_within_length_is_an_involution_that_keeps_padding_in_place():
    x = torch.arange(12.0).view(2, 6, 1)
    lengths = torch.tensor([4, 6])
    out = reverse_within_length(x, lengths)
    assert out[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5] and out[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
    assert torch.equal(reverse_within_length(out, lengths), x)


def test_frozen_rows_stay_put_while_trained_rows_move():
    torch.manual_seed(0)
    vocab, trainable, dim = 12, 6, 4
    init = torch.randn(vocab, dim)
    config = TaggerConfig(vocab_size=vocab, labels=("O", "B-X", "I-X"), word_dim=dim, num_trainable_words=trainable,
                          char_encoder="none", hidden_size=4, dropout=0.0)
    model = BiRNNTagger(config, init)
    frozen_before = model.words.frozen.clone()
    trained_before = model.words.trained.weight.detach().clone()
    assert not any(p is model.words.frozen for p in model.parameters())  # a buffer, not a parameter
    words = torch.tensor([[2, 7, 3, 9, 11], [4, 8, 10, 5, 1]])  # trained and frozen ids mixed
    batch = {"words": words, "lengths": torch.tensor([5, 5]), "mask": torch.ones_like(words, dtype=torch.bool),
             "tags": torch.tensor([[1, 2, 0, 1, 0], [0, 1, 2, 2, 0]])}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    assert torch.equal(model.words.frozen, frozen_before)
    assert torch.equal(model.words.frozen, init[trainable:])
    moved = (model.words.trained.weight.detach() - trained_before).abs().sum(dim=1)  # (trainable,)
    assert (moved[[1, 2, 3, 4, 5]] > 0).all()  # <unk> and every trained word seen
    assert moved[0] == 0  # <pad> stays zero
    out = model.words(torch.tensor([[7, 9, 11]]))
    assert torch.equal(out[0], init[[7, 9, 11]])  # frozen ids still read their pretrained vectors


def test_word_embedding_refuses_a_matrix_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"expected an embedding matrix of shape \(10, 4\), got \(9, 4\)"):
        WordEmbedding(10, 4, init=torch.zeros(9, 4))
