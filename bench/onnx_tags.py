#!/usr/bin/env python
"""Tags of a torch model and of its ONNX export (fp32 and int8) on every CoNLL-2003 test sentence;
one JSON line. Run it alone.

    python bench/onnx_tags.py runs/conll03-bilstm-crf
"""
import json, sys
from textrnn import load_model
from textrnn.data import load_corpus
from textrnn.utils import default_data_dir
model = sys.argv[1]
tokens = list(load_corpus("conll2003", data_dir=str(default_data_dir()))["test"]["tokens"])
ref = load_model(model).predict(tokens)
out = {"sentences": len(tokens), "tokens": sum(map(len, tokens))}
for name, kw in {"onnx-fp32": {"backend": "onnx"}, "onnx-int8": {"backend": "onnx", "quantize": "int8"}}.items():
    got = load_model(model, **kw).predict(tokens)
    out[name] = {"sentences_with_a_different_tag": sum(a != b for a, b in zip(ref, got)),
                 "tokens_with_a_different_tag": sum(x != y for a, b in zip(ref, got) for x, y in zip(a, b))}
print(json.dumps(out))
