"""The examples in docs/questions.md import as the text around them says.

Every fenced yaml/json/csv block is parsed by the real importer, so a change of
schema that forgets the documentation fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quizbot.models import QuestionKind
from quizbot.services.question_formats import (
    OPENTDB,
    QUIZBOT_CSV,
    QUIZBOT_JSON,
    QUIZBOT_YAML,
    RED_TRIVIA,
    QuestionRecord,
    parse_file,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "questions.md"
_FENCE = re.compile(r"^```(yaml|json|csv)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_doc_has_one_example_per_format() -> None:
    assert [syntax for syntax, _ in _examples()] == ["yaml", "json", "csv", "json", "yaml"]


# (format detected, questions, kinds) for each example in document order.
EXPECTED = [
    (
        QUIZBOT_YAML,
        3,
        {QuestionKind.MULTIPLE_CHOICE, QuestionKind.TRUE_FALSE, QuestionKind.FREE_TEXT},
    ),
    (QUIZBOT_JSON, 2, {QuestionKind.FREE_TEXT}),
    (QUIZBOT_CSV, 2, {QuestionKind.MULTIPLE_CHOICE, QuestionKind.FREE_TEXT}),
    (OPENTDB, 1, {QuestionKind.MULTIPLE_CHOICE}),
    (RED_TRIVIA, 2, {QuestionKind.FREE_TEXT}),
]


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_each_example_imports(index: int) -> None:
    syntax, body = _examples()[index]
    fmt, count, kinds = EXPECTED[index]
    parsed = parse_file(body.encode(), filename=f"world_capitals.{syntax}")
    assert parsed.fmt == fmt
    assert len(parsed.records) == count
    assert {r.kind for r in parsed.records} == kinds


def _records(index: int) -> list[QuestionRecord]:
    syntax, body = _examples()[index]
    return parse_file(body.encode(), filename=f"world_capitals.{syntax}").records


def test_what_the_doc_promises_about_the_examples() -> None:
    yaml_top = _records(0)
    assert {r.topic for r in yaml_top} == {"Physics"}  # the top-level topic applies
    assert yaml_top[2].tolerance == 0.05
    assert _records(1)[1].accepted == ("mitochondria",)
    csv_rows = _records(2)
    assert csv_rows[0].choices == ("Ag", "Au", "Gd", "Go")
    assert csv_rows[0].explanation == 'From the Latin aurum, "shining dawn".'
    opentdb = _records(3)[0]
    assert (opentdb.topic, opentdb.category) == ("Science & Nature", "Science & Nature")
    red = _records(4)
    assert {r.topic for r in red} == {"World Capitals"}
    assert {r.category for r in red} == {"General"}


def test_the_readme_example_imports() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = [m.group(2) for m in _FENCE.finditer(readme) if m.group(1) == "yaml"]
    assert blocks, "the README shows a question file"
    parsed = parse_file(blocks[0].encode(), filename="example.yaml")
    assert parsed.fmt == QUIZBOT_YAML
    assert len(parsed.records) == 2
    assert parsed.records[1].accepted == ("Canberra, ACT",)
