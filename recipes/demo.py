#!/usr/bin/env python
"""`make demo`: every shared corpus with its statistics, then three short training runs and the
pipeline API on example sentences. A few minutes on a 2-core CPU; the full recipes train longer.

    python recipes/demo.py [--output-dir runs/demo]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ner_conll2003  # noqa: E402
import sentiment_chnsenticorp  # noqa: E402
import sentiment_sst2  # noqa: E402

from textrnn import pipeline  # noqa: E402
from textrnn.data import corpus_statistics, format_statistics, load_corpus  # noqa: E402
from textrnn.utils import default_data_dir, setup_logging  # noqa: E402

CORPORA = ("conll2003", "conllpp", "sst2", "chnsenticorp", "resume_ner")


def show_corpora(data_dir: str) -> None:
    for name in CORPORA:
        table = format_statistics(corpus_statistics(load_corpus(name, data_dir=data_dir)))
        print(f"\n{name}\n{table}", flush=True)


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--data-dir", default=str(default_data_dir()))
    args = p.parse_args(argv)
    setup_logging()
    logging.getLogger("textrnn.data").setLevel(logging.WARNING)
    out, common = Path(args.output_dir), ["--data-dir", args.data_dir]
    start = time.perf_counter()

    banner("corpora (checked against their data cards)")
    show_corpora(args.data_dir)

    banner("NER: BiLSTM-CNN-CRF on CoNLL-2003, 3 epochs (the recipe's default runs 50)")
    ner_conll2003.main(common + ["--max-epochs", "3", "--output-dir", str(out / "ner")])
    ner = pipeline("ner", model=out / "ner")
    for text in ("George Washington went to Washington.",
                 "Angela Merkel met Emmanuel Macron in Paris on Tuesday, Reuters reported."):
        print(f"\n{text}\n{json.dumps(ner(text), indent=1)}")

    banner("sentiment: BiLSTM on SST-2, 3 epochs")
    sentiment_sst2.main(common + ["--max-epochs", "3", "--output-dir", str(out / "sst2")])
    banner("sentiment: character BiLSTM on ChnSentiCorp, 2 epochs")
    sentiment_chnsenticorp.main(common + ["--max-epochs", "2", "--output-dir", str(out / "chnsenticorp")])
    english = pipeline("sentiment-analysis", model=out / "sst2")
    chinese = pipeline("sentiment-analysis", model=out / "chnsenticorp")
    for clf, text in ((english, "A stirring, funny film."), (chinese, "这部电影不好看，浪费时间。")):
        print(f"{text} -> {clf(text)}")
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; models in {out}/ "
          f"(confusion matrices: {out}/*/confusion_matrix.png)")


if __name__ == "__main__":
    main()
