"""The ``textrnn`` command: train, evaluate, predict, export, embeddings, push.

    textrnn train ner --train train.conll --dev dev.conll --embeddings glove.6B.50d.txt.gz --output-dir runs/ner
    textrnn train classify --train train.csv --output-dir runs/clf
    textrnn evaluate runs/ner --test test.conll
    textrnn predict runs/ner < sentences.txt
    textrnn export runs/ner --format onnx --output runs/ner-onnx
    textrnn embeddings train corpus.txt --method fasttext --output vectors.bin
    textrnn push runs/ner my-org/my-ner
    textrnn check train.conll dev.conll
    textrnn serve runs/ner --port 8080
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

from . import options as opts
from .errors import TextrnnError

DATA_FLAGS = ("format", "scheme", "convert_to", "on_invalid", "token_column", "tag_column", "text_column",
              "label_column", "header", "delimiter", "multi_label", "label_sep", "multiline")


def _yes_no(value: str) -> bool:
    if value.lower() in ("1", "yes", "true", "y"):
        return True
    if value.lower() in ("0", "no", "false", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _column(value: str):
    """A 0-based column index, or a key name (JSON lines)."""
    return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value


def _add_data_args(p: argparse.ArgumentParser, task: str) -> None:
    g = p.add_argument_group("data (any file the readers accept: CoNLL, BMES, CSV, TSV, JSONL)")
    g.add_argument("--format", choices=("conll", "bmes", "csv", "tsv", "jsonl"),
                   help="default: from the extension, else from the content")
    if task in ("ner", "any"):
        g.add_argument("--scheme", choices=("IOB1", "IOB2", "BIOES", "BMES"),
                       help="tag scheme of the files (default: the one every file is valid in)")
        g.add_argument("--convert-to", choices=("IOB1", "IOB2", "BIOES", "BMES"), help="convert tags on reading")
        g.add_argument("--on-invalid", choices=("error", "repair"), help="an invalid tag sequence: stop or repair")
        g.add_argument("--token-column", type=_column, help="CoNLL column of the token (default 0)")
        g.add_argument("--tag-column", type=_column, help="CoNLL column of the tag (default -1, the last)")
    if task in ("classify", "any"):
        g.add_argument("--text-column", help="CSV/TSV column (name or 0-based index) or JSONL key of the text "
                       "(default: text)")
        g.add_argument("--label-column", help="column of the label (default: label)")
        g.add_argument("--header", type=_yes_no, default=None,
                       help="true/false: whether the CSV/TSV file has a header row (default: guess)")
        g.add_argument("--delimiter", help="CSV/TSV field separator")
        g.add_argument("--multi-label", action="store_true", help="several labels per text")
        g.add_argument("--label-sep", help="separator of several labels in one field")
        g.add_argument("--multiline", action="store_true", default=None,
                       help="trust quoted CSV fields that span lines even where their lines look like records")


def _data_kwargs(args: argparse.Namespace) -> Dict:
    return {k: getattr(args, k) for k in DATA_FLAGS if getattr(args, k, None) is not None}


QUOTES = "'\""
# Reader messages name Python keyword arguments; on the command line they are flags.
_OPTION = re.compile(r"\b(" + "|".join(DATA_FLAGS) + r")=('[^']*'|\"[^\"]*\"|True|False|-?\d+)?")


def _flag_words(message: str) -> str:
    """``pass on_invalid='repair'`` -> ``pass --on-invalid repair``, ``header=False`` -> ``--header false``."""
    def flag(m: "re.Match") -> str:
        name, value = "--" + m.group(1).replace("_", "-"), m.group(2)
        if value is None or value == "True":
            return name
        return f"{name} {'false' if value == 'False' else value.strip(QUOTES)}"
    return _OPTION.sub(flag, message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a tagger (ner) or a classifier (classify) on your files")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for task, adder in (("ner", opts.add_tagger_args), ("classify", opts.add_classifier_args)):
        help_text = ("BiLSTM/BiGRU(-CRF) tagger for any BIO-style tags" if task == "ner"
                     else "BiLSTM/BiGRU text classifier, single- or multi-label")
        p = tasks.add_parser(task, help=help_text, description=help_text)
        p.add_argument("--train", required=True, help="training file")
        p.add_argument("--dev", help="validation file (default: a fixed-seed tenth of --train)")
        p.add_argument("--test", help="test file, scored once at the end")
        _add_data_args(p, task)
        adder(p)
        if task == "ner":  # your own data: stop once dev stops improving (the recipes run a fixed schedule)
            opts.add_training_args(p, output_dir="runs/ner", patience=5)
        else:
            opts.add_training_args(p, output_dir="runs/classifier", optimizer="adam", lr=1e-3,
                                   schedule="constant", metric="accuracy", max_epochs=15, patience=3)

    ev = commands.add_parser("evaluate", help="score a saved model on a labelled file; ends with a JSON line")
    ev.add_argument("model", help="model folder or hub id")
    ev.add_argument("--test", required=True, help="labelled file")
    ev.add_argument("--batch-size", type=int, default=256)
    ev.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: bfloat16 inference, about twice as fast on CPUs with AVX-512 BF16")
    _add_runtime_args(ev)
    _add_data_args(ev, "any")

    pr = commands.add_parser("predict", help="tag or classify raw text lines; writes JSON lines")
    pr.add_argument("model", help="model folder or hub id")
    pr.add_argument("input", nargs="?", default="-", help="a text file, one input per line (default: stdin)")
    pr.add_argument("--batch-size", type=int, default=256)
    pr.add_argument("--aggregation", choices=("simple", "none"), default="simple", help="NER: spans or tokens")
    pr.add_argument("--top-k", type=int, default=1, help="classification: how many labels (0 = all)")
    pr.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="as for evaluate")
    _add_runtime_args(pr)

    ex = commands.add_parser("export", help="export a model to ONNX, to run on onnxruntime without torch")
    ex.add_argument("model", help="model folder or hub id")
    ex.add_argument("--format", choices=("onnx",), default="onnx")
    ex.add_argument("--output", required=True, help="folder to write (replaced whole if it exists)")
    ex.add_argument("--quantize", choices=("int8",), help="int8 weights (onnxruntime dynamic quantization)")

    ck = commands.add_parser("check", help="read data files as training would; print their format, tag scheme "
                             "and statistics, or the first problem as file:line")
    ck.add_argument("files", nargs="+", metavar="FILE", help="files read together, as the splits of one corpus "
                    "(train, dev, test...)")
    _add_data_args(ck, "any")

    emb = commands.add_parser("embeddings", help="train Word2Vec/FastText vectors on your text with gensim")
    emb_sub = emb.add_subparsers(dest="action", required=True, metavar="ACTION")
    et = emb_sub.add_parser("train", help="train vectors on a text file (one sentence per line)")
    et.add_argument("text", help="plain text file, one sentence per line")
    et.add_argument("--output", required=True, help="where to save (word2vec text; .bin = fastText binary)")
    et.add_argument("--method", choices=("word2vec", "fasttext"), default="word2vec")
    et.add_argument("--dim", type=int, default=100)
    et.add_argument("--window", type=int, default=5)
    et.add_argument("--min-count", type=int, default=1)
    et.add_argument("--epochs", type=int, default=10)
    et.add_argument("--seed", type=int, default=0)
    et.add_argument("--chars", action="store_true", help="train on characters (Chinese) instead of words")
    ec = emb_sub.add_parser("convert", help="rewrite vectors in a safe format, e.g. a gensim .kv/.model pickle")
    ec.add_argument("vectors", help="a vectors file in any format textrnn reads")
    ec.add_argument("--output", required=True, help="where to write (.gz compresses)")
    ec.add_argument("--format", choices=("word2vec", "word2vec-binary", "glove"), default="word2vec")
    ec.add_argument("--trust-pickle", action="store_true",
                    help="read a gensim native file (a pickle: it can run code; only for files you trust)")

    push = commands.add_parser("push", help="upload a model folder to the Hugging Face hub")
    push.add_argument("model", help="model folder")
    push.add_argument("repo_id", help="hub repository, e.g. my-org/conll03-bilstm-crf")
    push.add_argument("--private", action="store_true")
    push.add_argument("--token", help="hub token (default: the saved login)")
    push.add_argument("--revision", help="branch to push to")
    _add_serve_parser(commands)
    return parser


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("torch", "onnx"),
                   help="onnx: run on onnxruntime (default: onnx for an exported folder, else torch)")
    p.add_argument("--quantize", choices=("int8",), help="int8 weights on onnxruntime (implies --backend onnx)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (the torch backend; default %(default)s)")


def _load(args):
    from .tasks import load_model

    model = load_model(args.model, device=args.device, backend=args.backend, quantize=args.quantize)
    model.precision = args.precision
    model.autocast()  # validates the precision for this backend
    return model


def cmd_export(args) -> Dict:
    from .export import export_model

    folder = export_model(args.model, args.output, format=args.format, quantize=args.quantize)
    return {"model": args.model, "output": str(folder), "format": args.format, "quantize": args.quantize}


def _add_serve_parser(commands) -> None:
    from .serve.settings import ServeSettings

    d = ServeSettings()
    sv = commands.add_parser("serve", help="serve a model over HTTP (Hugging Face Inference API shapes)",
                             description="POST / {\"inputs\": str | [str], \"parameters\": {...}}; GET / is a "
                             "page to try the model, GET /health and /info describe it. Needs textrnn[serve].")
    sv.add_argument("model", help="model folder or hub id")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--max-batch-size", type=int, default=d.max_batch_size,
                    help="most inputs per model call; 1 turns dynamic batching off")
    sv.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms,
                    help="once the model is free, the longest wait for more inputs to join its next call")
    sv.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes, help="larger requests get 413")
    sv.add_argument("--max-input-chars", type=int, default=d.max_input_chars, help="longer inputs get 413")
    sv.add_argument("--threads", type=int, help="the model's CPU threads, torch's or onnxruntime's (default: "
                    "the library's choice; on 2 cores, 1 served most with torch, see docs/benchmarks.md)")
    sv.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    _add_runtime_args(sv)


def _splits(args) -> Dict[str, str]:
    files = {"train": args.train}
    if args.dev:
        files["validation"] = args.dev
    if args.test:
        files["test"] = args.test
    return files


def cmd_train(args) -> None:
    """Train on the user's files through the same run layer as the recipes (one JSON line at the end)."""
    from .data import load_corpus
    from .runs import hold_out, main_process_first, run

    opts.set_threads(args.threads)
    with main_process_first(args.cpu):
        corpus = load_corpus(_splits(args), **_data_kwargs(args))
    train, dev = corpus["train"], corpus.get("validation")
    if dev is None:  # hold out a fixed-seed tenth of train
        train, dev = hold_out(train, 0.1, args.seed)
    tests = {"test": corpus["test"]} if "test" in corpus else {}
    options = opts.tagger_kwargs(args) if args.task == "ner" else opts.classifier_kwargs(args)
    run(args.task, train, dev, tests, model_options=options, training=opts.training_config(args),
        output_dir=args.output_dir, resume=args.resume, command=" ".join(["textrnn"] + sys.argv[1:]), cpu=args.cpu,
        watch_tests=args.watch_tests)


def cmd_evaluate(args) -> Dict:
    from .data import load_corpus

    model = _load(args)
    data = load_corpus({"test": args.test}, **_data_kwargs(args))["test"]
    if "tags" in data.column_names:
        metrics = model.evaluate(data, batch_size=args.batch_size, report=True)
        print(metrics.pop("report"))
    else:
        metrics = model.evaluate(data, batch_size=args.batch_size)
        print(f"{'label':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
        for label, row in metrics["per_class"].items():
            print(f"{label:<20}{row['precision']:>10.2f}{row['recall']:>10.2f}{row['f1']:>10.2f}{row['support']:>10}")
    return {"model": args.model, "test": args.test, "examples": len(data),
            **{k: round(v, 2) for k, v in metrics.items() if isinstance(v, float)}}


def cmd_predict(args) -> None:
    from .pipelines import pipeline

    model = _load(args)
    is_tagger = model.config.architecture.startswith("birnn-tagger")
    pipe = pipeline("ner" if is_tagger else "text-classification", model=model, batch_size=args.batch_size,
                    precision=args.precision)
    from .data.text import decode_lines

    stream = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    lines = decode_lines(stream, "<stdin>" if args.input == "-" else args.input)
    kwargs = {"aggregation": args.aggregation} if is_tagger else {"top_k": args.top_k or None}
    for text, result in _predict_lines(pipe, lines, kwargs):
        sys.stdout.write(json.dumps({"text": text, "prediction": result}, ensure_ascii=False) + "\n")


def _predict_lines(pipe, lines, kwargs):
    """Pairs (line, prediction), streamed; blank lines give an empty prediction, not an error."""
    import itertools

    while True:
        chunk = list(itertools.islice(lines, 4096))
        if not chunk:
            return
        texts = [t for t in chunk if t.strip()]
        results = iter(pipe(texts, **kwargs)) if texts else iter(())
        for text in chunk:
            yield text, next(results) if text.strip() else []


def cmd_check(args) -> Dict:
    """Read files as training would (the checking pass alone) and print what was found."""
    from .data import format_statistics, scan_corpus, scan_statistics
    from .data.loading import split_name

    names = [split_name(Path(f).name) for f in args.files]
    if len(set(names)) < len(names) or None in names:
        names = ["train"] if len(args.files) == 1 else [f"file{i + 1}" for i in range(len(args.files))]
    scans = scan_corpus(dict(zip(names, args.files)), **_data_kwargs(args))
    for split, scan in scans.items():
        scheme = f", tags {scan.scheme}" + (f" converted to {scan.target}" if scan.target != scan.scheme else "") \
            if scan.task == "tagging" else ""
        print(f"{split}: {scan.path}: {scan.format}, {scan.task}{scheme}")
    print(format_statistics(scan_statistics(scans)))
    return {split: {"path": scan.path, "format": scan.format, "task": scan.task,
                    **({"scheme": scan.target} if scan.task == "tagging" else {}), **scan.counts}
            for split, scan in scans.items()}


def cmd_embeddings(args) -> Dict:
    from . import embeddings as emb

    if args.action == "convert":
        vectors = emb.convert_vectors(args.vectors, args.output, args.format, trust_pickle=args.trust_pickle)
        return {"output": args.output, "format": args.format, "words": len(vectors), "dim": vectors.dim}
    path = Path(args.text)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise TextrnnError(f"{path}: not UTF-8 text ({err})") from None
    sentences = [list(line.strip()) if args.chars else line.split() for line in lines if line.strip()]
    if not sentences:
        raise TextrnnError(f"{path}: no text to train on (the file is empty)")
    model = emb.train_word_vectors(sentences, method=args.method, dim=args.dim, window=args.window,
                                   min_count=args.min_count, epochs=args.epochs, seed=args.seed)
    fmt = "fasttext-bin" if args.output.endswith(".bin") and args.method == "fasttext" else "word2vec"
    emb.save_vectors(model, args.output, format=fmt)
    return {"output": args.output, "method": args.method, "words": len(model.wv), "dim": args.dim,
            "sentences": len(sentences), "format": fmt}


def cmd_serve(args) -> None:
    try:
        from .serve.app import run
    except ImportError as err:
        raise TextrnnError(f"serving needs FastAPI and uvicorn: pip install 'textrnn[serve]' ({err})") from None
    from .serve.model import ServedModel
    from .serve.settings import ServeSettings

    settings = ServeSettings(args.max_batch_size, args.max_wait_ms, args.max_body_bytes, args.max_input_chars,
                             args.threads)
    served = ServedModel(args.model, precision=args.precision, backend=args.backend, quantize=args.quantize,
                         threads=args.threads, device=args.device)
    run(served, args.host, args.port, settings)


def cmd_push(args) -> Dict:
    from .hub import push_to_hub

    url = push_to_hub(args.model, args.repo_id, private=args.private, token=args.token, revision=args.revision)
    return {"model": args.model, "repo_id": args.repo_id, "url": str(url)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if (extra and args.command == "predict" and args.input == "-" and len(extra) == 1
            and not extra[0].startswith("-")):
        # argparse fills an optional positional before the options: `predict MODEL --precision bf16 FILE`
        # would otherwise leave FILE unrecognised
        args.input, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from .utils import setup_logging

    setup_logging(args.verbose)
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
                "embeddings": cmd_embeddings, "push": cmd_push, "check": cmd_check, "serve": cmd_serve,
                "export": cmd_export}
    try:
        summary = handlers[args.command](args)
    except (TextrnnError, FileNotFoundError, ValueError, ImportError) as err:
        print(f"textrnn {args.command}: error: {_flag_words(str(err))}", file=sys.stderr)
        return 2
    if summary is not None:
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
