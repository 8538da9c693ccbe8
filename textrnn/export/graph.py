"""A textrnn model as one ONNX graph: embeddings, character features, BiRNN, and the emissions
(tagger) or label probabilities (classifier). The CRF decodes in numpy (textrnn.decoding).

The graph is written out node by node from the module's weights rather than traced by
``torch.onnx.export``: torch 2.13's default (dynamo) exporter specialises ``nn.LSTM`` to the
sequence length of the example input (``aten.lstm`` decomposes with a guard ``Eq(seq, 7)``), so
its graph fails on any other length, and the TorchScript exporter that gets it right is
deprecated. ONNX's own LSTM/GRU with ``sequence_lens`` is exactly the direction-split encoder of
``textrnn.modules.encoder``: the backward direction reads each sentence reversed within its own
length. Export checks the graph against the torch module before anything is written.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from ..modules.lexicon import NONE_ROW

OPSET = 17
INT64, FLOAT = TensorProto.INT64, TensorProto.FLOAT
# torch's gate blocks, in the order ONNX wants them: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


class Graph:
    """Nodes and initializers; each ``op`` returns the name of its (first) output."""

    def __init__(self):
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self.inputs: List[onnx.ValueInfoProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def input(self, name: str, elem_type: int, shape) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def const(self, array: np.ndarray, hint: str = "const") -> str:
        name = self._name(hint)
        array = np.asarray(array)  # (np.ascontiguousarray would turn a scalar into shape (1,))
        self.initializers.append(numpy_helper.from_array(array if array.flags.c_contiguous else array.copy(), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: Optional[str] = None, **attrs):
        names = [name] if name and outputs == 1 else [self._name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, dtype=np.int64), "ints")

    def linear(self, x: str, layer: torch.nn.Linear) -> str:
        out = self.op("MatMul", x, self.const(_numpy(layer.weight).T, "weight"))
        return out if layer.bias is None else self.op("Add", out, self.const(_numpy(layer.bias), "bias"))

    def model(self, outputs: List[Tuple[str, int, list]], doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "textrnn", self.inputs,
                                  [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="textrnn", doc_string=doc)
        onnx.checker.check_model(model, full_check=True)
        return model


# --------------------------------------------------------------------------- pieces
def word_embeddings(g: Graph, module, words: str, subwords: bool) -> str:
    """(batch, seq, dim): trained and frozen rows as one table, plus the fastText n-gram mean of
    unknown words (``oov_positions`` into the flattened positions, ``oov_buckets`` -1 padded)."""
    table = _numpy(module.trained.weight)
    if module.frozen is not None:
        table = np.concatenate([table, _numpy(module.frozen)])
    x = g.op("Gather", g.const(table, "word_table"), words)
    if not subwords:
        return x
    positions = g.input("oov_positions", INT64, ["oov"])
    buckets = g.input("oov_buckets", INT64, ["oov", "ngrams"])
    valid = g.op("GreaterOrEqual", buckets, g.ints(0))  # (oov, ngrams)
    rows = g.op("Gather", g.const(_numpy(module.ngrams), "ngram_table"), g.op("Where", valid, buckets, g.ints(0)))
    weight = g.op("Cast", valid, to=FLOAT)
    summed = g.op("ReduceSum", g.op("Mul", rows, g.op("Unsqueeze", weight, g.ints(-1))), g.ints(1), keepdims=0)
    count = g.op("Max", g.op("ReduceSum", weight, g.ints(1), keepdims=1), g.const(np.ones(1, np.float32)))
    flat = g.op("Reshape", x, g.ints(-1, module.dim))  # (batch * seq, dim)
    flat = g.op("ScatterND", flat, g.op("Unsqueeze", positions, g.ints(1)), g.op("Div", summed, count))
    return g.op("Reshape", flat, g.op("Shape", x))


def lexicon_sets(g: Graph, module) -> str:
    """(batch, seq, 4 * dim): the SoftLexicon sets of ``textrnn.modules.lexicon.LexiconEmbedding`` from
    the ``lexicon`` codes (batch, seq, k), ``4 * entry + set``, 0 padding."""
    codes = g.input("lexicon", INT64, ["batch", "seq", "matches"])
    four = g.ints(4)
    entry, which_set = g.op("Div", codes, four), g.op("Mod", codes, four)  # codes >= 0: Div is floor division
    weights = g.const(_numpy(module.entry_weights), "lexicon_weights")
    weight = g.op("Gather", weights, entry)  # (batch, seq, k)
    rows = g.op("Gather", g.const(module.entry_rows.cpu().numpy().astype(np.int64), "lexicon_rows"), entry)
    table = _numpy(module.vectors.trained.weight)
    if module.vectors.frozen is not None:
        table = np.concatenate([table, _numpy(module.vectors.frozen)])
    vectors = g.op("Gather", g.const(table, "lexicon_table"), rows)  # (batch, seq, k, dim)
    off_on = g.const(np.array([0, 1], np.float32))
    one_hot = g.op("OneHot", which_set, g.ints(4), off_on, axis=-1)  # (batch, seq, k, 4)
    which = g.op("Mul", one_hot, g.op("Unsqueeze", weight, g.ints(-1)))
    sums = g.op("MatMul", g.op("Transpose", which, perm=[0, 1, 3, 2]), vectors)  # (batch, seq, 4, dim)
    set_weight = g.op("ReduceSum", which, g.ints(2), keepdims=0)  # (batch, seq, 4)
    total = g.op("Max", g.op("ReduceSum", set_weight, g.ints(-1), keepdims=1),
                 g.const(np.array([1e-12], np.float32)))  # (batch, seq, 1)
    scale = g.op("Div", g.const(np.array([4.0], np.float32)), total)  # (batch, seq, 1)
    sets = g.op("Mul", sums, g.op("Unsqueeze", scale, g.ints(-1)))
    empty = g.op("Unsqueeze", g.op("Equal", set_weight, g.const(np.array([0.0], np.float32))), g.ints(-1))
    sets = g.op("Where", empty, g.const(table[NONE_ROW], "lexicon_none"), sets)  # empty set: the <none> vector
    return g.op("Reshape", sets, g.ints(0, 0, -1))


def char_features(g: Graph, module) -> str:
    """(batch, seq, features): the char CNN or BiLSTM over each distinct word, gathered per position."""
    chars = g.input("chars", INT64, ["words", "word_length"])
    index = g.input("char_index", INT64, ["batch", "seq"])
    x = g.op("Gather", g.const(_numpy(module.embedding.weight), "char_table"), chars)  # (words, len, dim)
    if hasattr(module, "conv"):
        conv = module.conv
        k = conv.kernel_size[0]
        h = g.op("Conv", g.op("Transpose", x, perm=[0, 2, 1]), g.const(_numpy(conv.weight), "conv_weight"),
                 g.const(_numpy(conv.bias), "conv_bias"), pads=[k // 2, k // 2])  # (words, filters, len)
        pad = g.op("Unsqueeze", g.op("Equal", chars, g.ints(0)), g.ints(1))  # (words, 1, len)
        h = g.op("Where", pad, g.const(np.array(-np.inf, np.float32)), h)
        feats = g.op("ReduceMax", h, axes=[2], keepdims=0)  # (words, filters)
    else:
        lengths = g.op("ReduceSum", g.op("Cast", g.op("Not", g.op("Equal", chars, g.ints(0))), to=INT64),
                       g.ints(1), keepdims=0)
        lengths = g.op("Max", lengths, g.ints(1))  # as torch: an all-padding row counts one step
        _, feats = rnn_layer(g, g.op("Transpose", x, perm=[1, 0, 2]), lengths, module.lstm, "lstm",
                             backward=module.lstm, states=False)  # (words, 2 * hidden): final states
    zero = g.const(np.zeros((1, module.output_size), np.float32))
    feats = g.op("Concat", feats, zero, axis=0)  # + a zero row, which padding positions point to
    return g.op("Gather", feats, index)


def _rnn_weights(module, rnn: str, suffix: str = "") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction's W, R and B (Wb then Rb) with the gate blocks in ONNX order."""
    def reorder(a: np.ndarray) -> np.ndarray:
        blocks = np.split(a, len(GATE_ORDER[rnn]), axis=0)
        return np.concatenate([blocks[i] for i in GATE_ORDER[rnn]], axis=0)

    w, r = (reorder(_numpy(getattr(module, f"weight_{n}_l0{suffix}"))) for n in ("ih", "hh"))
    b = np.concatenate([reorder(_numpy(getattr(module, f"bias_{n}_l0{suffix}"))) for n in ("ih", "hh")])
    return w, r, b


def rnn_layer(g: Graph, x: str, lengths: str, forward, rnn: str, backward, states: bool = True
              ) -> Tuple[Optional[str], str]:
    """A bidirectional ONNX LSTM/GRU over ``x`` (seq, batch, input) with per-row lengths: returns
    the states (batch, seq, 2 * hidden) if ``states``, and the final states (batch, 2 * hidden).
    ``forward`` and ``backward`` are unidirectional torch modules, or one bidirectional module
    passed as both."""
    if backward is forward:  # one bidirectional nn.LSTM (the char BiLSTM)
        parts = [_rnn_weights(forward, rnn), _rnn_weights(forward, rnn, "_reverse")]
    else:
        parts = [_rnn_weights(forward, rnn), _rnn_weights(backward, rnn)]
    w, r, b = (np.stack([p[i] for p in parts]) for i in range(3))
    hidden = forward.hidden_size
    attrs = {"hidden_size": hidden, "direction": "bidirectional"}
    if rnn == "gru":
        attrs["linear_before_reset"] = 1  # torch's GRU applies the reset gate after the product
    seq_lens = g.op("Cast", lengths, to=TensorProto.INT32)
    y, y_h = g.op(rnn.upper(), x, g.const(w, f"{rnn}_W"), g.const(r, f"{rnn}_R"), g.const(b, f"{rnn}_B"),
                  seq_lens, outputs=2, **attrs)  # y: (seq, 2, batch, hidden), y_h: (2, batch, hidden)
    final = g.op("Reshape", g.op("Transpose", y_h, perm=[1, 0, 2]), g.ints(0, -1))  # (batch, 2 * hidden)
    if not states:
        return None, final
    return g.op("Reshape", g.op("Transpose", y, perm=[2, 0, 1, 3]), g.ints(0, 0, -1)), final


def encoder(g: Graph, module, x: str, lengths: str, rnn: str) -> Tuple[str, str]:
    """The stacked direction-split encoder: (batch, seq, input) -> (batch, seq, 2 * hidden), and
    the last layer's final states. Positions past a row's length hold zeros."""
    last = None
    for fwd, bwd in zip(module.forward_rnns, module.backward_rnns):
        x, last = rnn_layer(g, g.op("Transpose", x, perm=[1, 0, 2]), lengths, fwd, rnn, backward=bwd)
    return x, last


def _mask(g: Graph, words: str, lengths: str) -> str:
    """(batch, seq) bool: True on real positions."""
    seq = g.op("Gather", g.op("Shape", words), g.ints(1))
    positions = g.op("Range", g.const(np.array(0, np.int64)), seq, g.const(np.array(1, np.int64)))
    return g.op("Less", g.op("Unsqueeze", positions, g.ints(0)), g.op("Unsqueeze", lengths, g.ints(1)))


def pooled(g: Graph, module, kind: str, states: str, mask: str, lengths: str, hidden: int) -> str:
    """The classifier's pooling over real positions only (textrnn.modules.pooling)."""
    neg_inf = g.const(np.array(-np.inf, np.float32))
    mask3 = g.op("Unsqueeze", mask, g.ints(-1))  # (batch, seq, 1)
    if kind == "max":
        return g.op("ReduceMax", g.op("Where", mask3, states, neg_inf), axes=[1], keepdims=0)
    if kind == "mean":
        weight = g.op("Cast", mask3, to=FLOAT)
        return g.op("Div", g.op("ReduceSum", g.op("Mul", states, weight), g.ints(1), keepdims=0),
                    g.op("ReduceSum", weight, g.ints(1), keepdims=0))
    if kind == "last":  # the forward half at the last token, the backward half at the first
        at_end = g.op("GatherND", states, g.op("Unsqueeze", g.op("Sub", lengths, g.ints(1)), g.ints(1)),
                      batch_dims=1)  # (batch, 2 * hidden)
        ahead = g.op("Slice", at_end, g.ints(0), g.ints(hidden), g.ints(1))
        first = g.op("Gather", states, g.const(np.array(0, np.int64)), axis=1)
        behind = g.op("Slice", first, g.ints(hidden), g.ints(2 * hidden), g.ints(1))
        return g.op("Concat", ahead, behind, axis=1)
    # additive attention
    scores = g.linear(g.op("Tanh", g.linear(states, module.proj)), module.query)  # (batch, seq, 1)
    scores = g.op("Where", mask, g.op("Squeeze", scores, g.ints(-1)), neg_inf)
    weights = g.op("Softmax", scores, axis=1)  # (batch, seq)
    return g.op("Squeeze", g.op("MatMul", g.op("Unsqueeze", weights, g.ints(1)), states), g.ints(1))


# --------------------------------------------------------------------------- whole models
def _inputs(g: Graph, module, config) -> Tuple[str, str, str]:
    words = g.input("words", INT64, ["batch", "seq"])
    lengths = g.input("lengths", INT64, ["batch"])
    x = word_embeddings(g, module.words, words, bool(config.subword_buckets))
    if module.bigrams is not None:
        bigrams = g.input("bigrams", INT64, ["batch", "seq"])
        x = g.op("Concat", x, g.op("Gather", g.const(_numpy(module.bigrams.weight), "bigram_table"), bigrams),
                 axis=2)
    if module.lexicon is not None:
        x = g.op("Concat", x, lexicon_sets(g, module.lexicon), axis=2)
    return words, lengths, x


def tagger_graph(module) -> onnx.ModelProto:
    """BiRNNTagger -> emissions (batch, seq, num_tags)."""
    config, g = module.config, Graph()
    words, lengths, x = _inputs(g, module, config)
    if module.chars is not None:
        x = g.op("Concat", x, char_features(g, module.chars), axis=2)
    states, _ = encoder(g, module.encoder, x, lengths, config.rnn)
    emissions = g.linear(states, module.proj)
    g.op("Identity", emissions, name="emissions")
    return g.model([("emissions", FLOAT, ["batch", "seq", config.num_tags])],
                   f"textrnn {config.architecture}: emissions; decode with textrnn.decoding")


def classifier_graph(module) -> onnx.ModelProto:
    """BiRNNClassifier -> probabilities (batch, num_labels): softmax, or sigmoids if multi-label."""
    config, g = module.config, Graph()
    words, lengths, x = _inputs(g, module, config)
    states, _ = encoder(g, module.encoder, x, lengths, config.rnn)
    vector = pooled(g, module.pool, config.pooling, states, _mask(g, words, lengths), lengths, config.hidden_size)
    logits = g.linear(vector, module.out)
    if config.multi_label:
        g.op("Sigmoid", logits, name="probabilities")
    else:
        g.op("Softmax", logits, axis=1, name="probabilities")
    return g.model([("probabilities", FLOAT, ["batch", config.num_labels])],
                   f"textrnn {config.architecture}: label probabilities")


def build_graph(task_model) -> onnx.ModelProto:
    """The ONNX graph of a SequenceTagger or TextClassifier (its module, in eval mode)."""
    module = task_model.model
    if task_model.task == "token-classification":
        return tagger_graph(module)
    return classifier_graph(module)


def module_outputs(task_model, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """What the graph should compute, by the torch module (for the export check)."""
    if task_model.task == "token-classification":
        return task_model.run_module(task_model.model.emissions, arrays)
    return task_model.run_module(task_model.model.probabilities, arrays)
