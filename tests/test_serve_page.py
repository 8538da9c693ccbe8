"""The try-it page at GET /: self-contained, and rendered by a real headless browser when one is here."""
import html.parser
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

pytest.importorskip("fastapi")

from textrnn.serve import ServeSettings, create_app  # noqa: E402
from tests.test_serve import call, ner_folder, ner_model, serving  # noqa: E402,F401 - fixtures reused

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page_url(ner_model):
    with serving(create_app(ner_model, ServeSettings(max_wait_ms=0))) as url:
        yield url


class Marks(html.parser.HTMLParser):
    """The entity marks of a rendered page: (label, score, the text inside each mark)."""

    def __init__(self):
        super().__init__()
        self.marks, self.done, self._open = [], False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body" and attrs.get("data-done") == "1":
            self.done = True
        if tag == "mark" and "ent" in attrs.get("class", ""):
            self._open = [attrs["data-label"], float(attrs["data-score"]), ""]
        elif tag == "span" and self._open is not None:
            self.marks.append(tuple(self._open))  # the label chip follows the entity's own text
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data


def test_page_is_self_contained(page_url):
    status, page = call(page_url + "/")
    assert status == 200 and "<textarea" in page and 'fetch("predict"' in page and 'fetch("info")' in page
    for needle in ('src="http', "src='http", 'href="http', "@import", "<link"):
        assert needle not in page  # no CDN, no front-end build: one HTML file with inline CSS and JS


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (apt-get install chromium)")
def test_headless_chromium_highlights_the_entities_in_place(page_url):
    text = "John Smith lives in Paris . Mary went to New York City"
    expected = call(page_url + "/", {"inputs": text})[1]
    assert expected, "the tiny model should find entities in its own training sentences"
    with tempfile.TemporaryDirectory() as profile:
        rendered = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
             f"{page_url}/?text={urllib.parse.quote(text)}"],
            capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    marks = Marks()
    marks.feed(rendered.stdout)
    assert marks.done, "the page never finished its request"
    assert [(label, word) for label, _, word in marks.marks] == [(e["entity_group"], e["word"]) for e in expected]
    assert [score for _, score, _ in marks.marks] == pytest.approx([e["score"] for e in expected])
