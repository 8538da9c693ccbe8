"""Pipelines: raw text in, spans whose offsets are exact, in order, streamed, never truncated."""
import types

import pytest
import torch

from textrnn import pipeline
from textrnn.pipelines.ner import segments
from textrnn.tasks.classification import build_classifier
from textrnn.tasks.tagging import build_tagger
from textrnn.vocab import pre_tokenize
from tests.helpers import classification_dataset, known_entities, tagging_dataset, train_fixed_tagger

TEXTS = [
    "George Washington went to Washington.",
    "Paris  and   Paris\nand\n\nParis again , Paris!",
    "U.S. troops (3,000 of them) left on 12:30 -- said Smith's aide.",
    "我在北京大学上学，北京很大。",
    "Mixed 中文 and English: 张三去了 New York。",
    "",
]


@pytest.fixture(scope="module")
def ner():
    torch.manual_seed(0)
    tagger = build_tagger(tagging_dataset(), word_dim=8, hidden_size=8, char_dim=4, char_filters=4)
    return pipeline("ner", model=tagger)


@pytest.mark.parametrize("text", TEXTS)
def test_pre_tokenizer_offsets_are_exact(text):
    for token, (start, end) in pre_tokenize(text):
        assert text[start:end] == token and token.strip() == token and token


def test_chinese_is_split_per_character():
    assert [t for t, _ in pre_tokenize("北京大学 ok")] == ["北", "京", "大", "学", "ok"]


@pytest.fixture(scope="module")
def fixed_ner():
    return pipeline("ner", model=train_fixed_tagger())


KNOWN = [
    ("John Smith lives in Paris .".split(), " "),
    ("Reuters w w Mary . Berlin and Paris".split(), " "),
    ("张 三 去 了 北 京 。".split(), ""),  # Chinese without spaces: one token per character
    ("w Mary w 张 三 w Paris".split(), " "),  # English and Chinese mixed
    ("w w".split(), " "),
]


@pytest.mark.parametrize("pieces, sep", KNOWN)
def test_ner_finds_known_entities_at_exact_offsets(fixed_ner, pieces, sep):
    text, entities, tokens = known_entities(pieces, sep)
    got = fixed_ner(text)
    assert [(e["entity_group"], e["start"], e["end"], e["word"]) for e in got] == entities
    assert all(0.5 < e["score"] <= 1.0 and isinstance(e["score"], float) for e in got)
    per_token = fixed_ner(text, aggregation="none")
    assert [(e["entity"], e["index"], e["start"], e["end"]) for e in per_token] == tokens


def test_input_kinds(ner):
    single = ner(TEXTS[0])
    assert isinstance(single, list) and ner([TEXTS[0]]) == [single]
    consumed = []

    def source():
        for text in TEXTS * 200:
            consumed.append(text)
            yield text

    stream = ner(source(), batch_size=4)
    assert isinstance(stream, types.GeneratorType)
    first = next(stream)
    assert first == single
    assert len(consumed) < len(TEXTS) * 200  # lazy: only the first chunk was read
    assert len(list(stream)) == len(TEXTS) * 200 - 1


def test_long_document_is_not_truncated_and_offsets_survive_the_cuts(fixed_ner):
    """Entities after several sentence-end cuts, after a 256-token cut, and at the very end."""
    pieces = ("Mary met John Smith in Berlin .".split() * 5 + ["w"] * 300
              + "Reuters reported from Paris .".split() + "w 张 三 w".split())
    text, entities, tokens = known_entities(pieces)
    prepared = fixed_ner.preprocess(text)
    cuts = [a for a, _ in prepared["segments"][1:]]
    assert cuts[:5] == [7, 14, 21, 28, 35] and 35 + 256 in cuts  # sentence ends, then the 256-token cut
    assert sum(b - a for a, b in prepared["segments"]) == len(pre_tokenize(text)) == len(pieces)
    found = [(e["entity_group"], e["start"], e["end"], e["word"]) for e in fixed_ner(text)]
    assert found == entities and len(entities) == 5 * 3 + 3
    assert found[-1][3] == "张 三" and found[-2][3] == "Paris"  # past the 256-token cut
    per_token = [(e["entity"], e["index"], e["start"], e["end"]) for e in fixed_ner(text, aggregation="none")]
    assert per_token == tokens and per_token[-1][1] == len(pieces) - 2


def test_segments_cover_every_token_without_sentence_ends():
    tokens = ["w"] * 1000
    spans = segments(tokens, max_tokens=256)
    assert spans[0] == (0, 256) and spans[-1][1] == 1000
    assert all(b - a <= 256 for a, b in spans) and sum(b - a for a, b in spans) == 1000


def test_classification_pipeline_outputs():
    torch.manual_seed(0)
    clf = pipeline("sentiment-analysis", model=build_classifier(classification_dataset(), word_dim=8, hidden_size=8))
    out = clf(["good film", "这部电影不好看"])
    assert [set(d) for d in out] == [{"label", "score"}] * 2
    everything = clf("good film", top_k=None)
    assert sorted(d["label"] for d in everything) == ["negative", "positive"]
    assert sum(d["score"] for d in everything) == pytest.approx(1.0)


def test_unknown_options_are_errors_and_transformers_names_work(ner):
    """A misspelt or foreign option is refused before any work, instead of silently ignored;
    ``aggregation_strategy`` (transformers' name) is ``aggregation``."""
    text = TEXTS[0]
    assert ner(text, aggregation_strategy="none") == ner(text, aggregation="none") != ner(text)
    per_token = pipeline("ner", model=ner.model, aggregation_strategy="none")
    assert per_token(text) == ner(text, aggregation="none")
    with pytest.raises(TypeError, match="unknown option 'agregation'.*aggregation, max_tokens"):
        ner(text, agregation="none")
    with pytest.raises(TypeError, match="'aggregation' twice"):
        ner(text, aggregation="none", aggregation_strategy="none")
    with pytest.raises(ValueError, match="aggregation must be 'simple' or 'none'; got 'first'"):
        ner(text, aggregation_strategy="first")
    with pytest.raises(TypeError, match="unknown option 'top_k'"):
        pipeline("ner", model=ner.model, top_k=3)
    clf = pipeline("sentiment-analysis",
                   model=build_classifier(classification_dataset(), word_dim=8, hidden_size=8))
    with pytest.raises(TypeError, match="unknown option 'aggregation'; its options: top_k"):
        clf("good film", aggregation="none")


def test_wrong_task_for_model_is_a_clear_error():
    clf = build_classifier(classification_dataset(), word_dim=8, hidden_size=8)
    with pytest.raises(ValueError, match="needs a birnn-tagger model"):
        pipeline("ner", model=clf)
    with pytest.raises(ValueError, match="unknown task"):
        pipeline("summarization", model=clf)


def test_crf_span_scores_are_probabilities_below_one_when_ambiguous(ner):
    """An untrained CRF is unsure of everything: each span's probability is real and below 1."""
    found = [e for entities in ner(TEXTS * 3) for e in entities]
    token_level = [e for entities in ner(TEXTS, aggregation="none") for e in entities]
    assert found or token_level
    for e in found + token_level:
        assert 0.0 < e["score"] < 1.0


def test_bf16_inference_is_close_to_fp32_and_valid():
    torch.manual_seed(5)
    tagger = build_tagger(tagging_dataset(), word_dim=16, hidden_size=16, char_dim=8, char_filters=8)
    items = [tagger.encode(t) for t, _ in __import__("tests.helpers", fromlist=["TINY_NER"]).TINY_NER]
    batch = tagger.collate(items)
    tagger.model.eval()
    with torch.no_grad():
        exact = tagger.model.emissions(batch)
        tagger.precision = "bf16"
        with tagger.autocast():
            fast = tagger.model.emissions(batch).float()
    assert torch.allclose(exact, fast, atol=0.05) and not torch.equal(exact, fast)
    for entities in pipeline("ner", model=tagger, precision="bf16")(TEXTS):
        assert all(0.0 < e["score"] <= 1.0 for e in entities)
    with pytest.raises(ValueError, match="precision must be"):
        pipeline("ner", model=tagger, precision="int8")
