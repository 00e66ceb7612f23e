"""Question files: every import format, validation messages, limits, export round trips,
the bundled bank, and the generated practice questions (arithmetic re-checked here)."""

from __future__ import annotations

import ast
import base64
import json
import operator
import re
from collections import Counter
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from quizbot import models
from quizbot.errors import InvalidInputError
from quizbot.models import Difficulty, QuestionKind
from quizbot.services.practice import generate_practice_questions
from quizbot.services.question_formats import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_QUESTIONS,
    OPENTDB_EXPLANATION,
    QuestionFileError,
    QuestionRecord,
    detect_format,
    export_questions,
    parse_file,
    parse_questions,
    record_from_model,
)

BUNDLED = sorted((Path(__file__).parents[2] / "quizbot" / "data" / "questions").glob("*.yaml"))

OURS_YAML = """\
topic: Physics
questions:
  - prompt: "What is the SI unit of force?"
    kind: free_text
    difficulty: easy
    category: Mechanics
    answer: newton
    accepted: ["N", "newtons"]
    explanation: "One newton accelerates one kilogram at one metre per second squared."
  - prompt: "Light travels faster in water than in a vacuum."
    kind: true_false
    difficulty: medium
    category: Optics
    answer: False
    explanation: "Light is slowest in dense media; c is its vacuum speed."
  - prompt: "What is g at the Earth's surface, in m/s²?"
    kind: free_text
    difficulty: hard
    category: Mechanics
    answer: 9.81
    tolerance: 0.05
    explanation: "About 9.81 m/s², a little more at the poles."
  - topic: Chemistry
    prompt: "Which gas makes up most of the air?"
    kind: multiple_choice
    difficulty: easy
    category: Air
    choices: [Oxygen, Nitrogen, Argon, Carbon dioxide]
    answer: Nitrogen
""".encode()

OURS_JSON = json.dumps(
    [
        {
            "topic": "History",
            "category": "Ancient",
            "difficulty": "medium",
            "kind": "free_text",
            "prompt": "In which year did Augustus die (AD)?",
            "answer": 14,
            "tolerance": 0,
            "explanation": "Augustus died in AD 14.",
        },
        {
            "topic": "History",
            "category": "Modern",
            "difficulty": "EASY",
            "kind": "true-false",
            "prompt": "The Berlin Wall fell in 1989.",
            "answer": True,
        },
    ]
).encode()

OURS_CSV = (
    b"topic,category,difficulty,kind,prompt,choices,answer,accepted,tolerance,explanation\n"
    b"Geography,Capitals,easy,multiple_choice,What is the capital of Australia?,"
    b'Sydney|Canberra|Melbourne|Perth,Canberra,,,"Canberra was built as a compromise, '
    b'between Sydney and Melbourne."\n'
    b"\n"
    b'Geography,Rivers,hard,free_text,"How long is the Nile, in km?",,6650,"6650 km|6,650",'
    b'100,"About 6,650 km."\n'
)

OPENTDB = json.dumps(
    {
        "response_code": 0,
        "results": [
            {
                "type": "multiple",
                "difficulty": "easy",
                "category": "Science: Computers",
                "question": "What does &quot;HTTP&quot; stand for? It&#039;s the web&#039;s "
                "protocol &amp; more.",
                "correct_answer": "HyperText Transfer Protocol",
                "incorrect_answers": [
                    "High Transfer Text Protocol",
                    "Hyperlink &amp; Text Protocol",
                    "Home Tool Transfer Protocol",
                ],
            },
            {
                "type": "boolean",
                "difficulty": "medium",
                "category": "History",
                "question": "The Great Fire of London happened in 1666.",
                "correct_answer": "True",
                "incorrect_answers": ["False"],
            },
        ],
    }
).encode()

RED = b"""\
AUTHOR: Someone, Someone Else
CONFIG:
  max_score: 10
  timeout: 120
How many legs does a spider have?:
- 8
- eight
What is pi to two decimal places?:
- 3.14
Which Python version added the match statement?:
- 3.10
- Python 3.10
Is the Earth round?:
- yes
- true
What is the capital of France?: Paris
"""


def one_question(**fields: Any) -> bytes:
    """A quizbot JSON file with one question: a valid one, changed by `fields`."""
    question: dict[str, Any] = {
        "topic": "Physics",
        "category": "Mechanics",
        "difficulty": "easy",
        "kind": "multiple_choice",
        "prompt": "What is the boiling point of water at sea level, in °C?",
        "choices": ["90", "100", "110"],
        "answer": "100",
        "explanation": "At 1 atm water boils at 100 °C.",
    }
    question.update(fields)
    return json.dumps([{k: v for k, v in question.items() if v is not None}]).encode()


# Where a problem in `one_question()` is reported.
WHERE = 'question 1 ("What is the boiling point of water at se...")'


def problems_of(data: bytes, filename: str = "bank.json") -> list[str]:
    with pytest.raises(QuestionFileError) as caught:
        parse_questions(data, filename=filename)
    return caught.value.problems


# --------------------------------------------------------------------------- our formats


def test_our_yaml_uses_the_top_level_topic_unless_a_question_overrides_it() -> None:
    records = parse_questions(OURS_YAML, filename="physics.yaml")
    assert [r.topic for r in records] == ["Physics", "Physics", "Physics", "Chemistry"]
    force, light, gravity, air = records
    assert force.kind == QuestionKind.FREE_TEXT and force.difficulty == Difficulty.EASY
    assert force.accepted == ("N", "newtons") and force.source == "import"
    # Unquoted YAML scalars keep their spelling: not the boolean False, not the float 9.81.
    assert light.answer == "False" and light.kind == QuestionKind.TRUE_FALSE
    assert gravity.answer == "9.81" and gravity.tolerance == 0.05
    assert air.choices == ("Oxygen", "Nitrogen", "Argon", "Carbon dioxide")
    assert air.answer == "Nitrogen" and air.explanation == ""


def test_our_json_list_takes_numbers_booleans_and_loose_spellings() -> None:
    augustus, wall = parse_questions(OURS_JSON, filename="history.json")
    assert (augustus.answer, augustus.tolerance) == ("14", 0.0)
    assert wall.answer == "True"
    assert (wall.difficulty, wall.kind) == (Difficulty.EASY, QuestionKind.TRUE_FALSE)


def test_default_topic_fills_questions_without_one() -> None:
    data = json.dumps(json.loads(one_question())[0] | {"topic": None}).encode()
    data = b"[" + data + b"]"
    assert problems_of(data) == [f'{WHERE}, field "topic": is required']
    (record,) = parse_questions(data, filename="bank.json", default_topic="Kitchen Science")
    assert record.topic == "Kitchen Science"


def test_csv_splits_lists_skips_blank_lines_and_reads_tolerance() -> None:
    parsed = parse_file(OURS_CSV, filename="geo.csv")
    assert parsed.fmt == "quizbot-csv"
    canberra, nile = parsed.records
    assert canberra.choices == ("Sydney", "Canberra", "Melbourne", "Perth")
    assert (
        canberra.explanation == "Canberra was built as a compromise, between Sydney and Melbourne."
    )
    assert nile.prompt == "How long is the Nile, in km?"
    assert (nile.answer, nile.accepted, nile.tolerance) == ("6650", ("6650 km", "6,650"), 100.0)


def test_csv_with_semicolons_and_a_bom_from_excel() -> None:
    data = (
        "\ufefftopic;category;difficulty;kind;prompt;answer\n"
        "Art;Painters;easy;free_text;Who painted the Mona Lisa?;Leonardo da Vinci\n"
    )
    (record,) = parse_questions(data.encode(), filename="art.csv")
    assert (record.topic, record.answer) == ("Art", "Leonardo da Vinci")


def test_csv_problems_name_the_line_of_the_row() -> None:
    data = (
        b"topic,category,difficulty,kind,prompt,answer,explanation\n"
        b'Art,Painters,easy,free_text,Who painted it?,Leonardo,"Two\nlines"\n'
        b"\n"
        b"Art,Painters,impossible,free_text,Who sculpted David?,Michelangelo,\n"
        b"Art,Painters,easy,free_text,Who painted Guernica, in 1937?,Picasso,\n"
    )
    assert problems_of(data, "art.csv") == [
        'line 5 ("Who sculpted David?"), field "difficulty": '
        'must be easy, medium or hard (got "impossible")',
        'line 6 ("Who painted Guernica"): 8 values but the header has 7 columns '
        '(put text containing commas in double quotes, "like, this")',
    ]


def test_csv_header_must_have_the_required_columns() -> None:
    with pytest.raises(QuestionFileError) as caught:
        parse_questions(b"topic,prompt\nArt,Who?\n", filename="a.csv")
    assert str(caught.value) == (
        'a.csv was not imported: line 1: missing columns "category", "difficulty", "kind", '
        '"answer"; the header must be '
        "topic,category,difficulty,kind,prompt,choices,answer,accepted,tolerance,explanation"
    )


# --------------------------------------------------------------------------- Open Trivia DB


def test_opentdb_entities_categories_kinds_and_sorted_choices() -> None:
    parsed = parse_file(OPENTDB, filename="opentdb.json")
    assert parsed.fmt == "opentdb"
    http, fire = parsed.records
    assert http.prompt == "What does \"HTTP\" stand for? It's the web's protocol & more."
    assert (http.topic, http.category) == ("Science", "Computers")
    assert http.kind == QuestionKind.MULTIPLE_CHOICE
    assert http.choices == (
        "High Transfer Text Protocol",
        "Home Tool Transfer Protocol",
        "Hyperlink & Text Protocol",
        "HyperText Transfer Protocol",
    )
    assert http.answer == "HyperText Transfer Protocol"
    assert http.explanation == OPENTDB_EXPLANATION and http.source == "opentdb"
    assert (fire.topic, fire.category) == ("History", "History")
    assert (fire.kind, fire.answer, fire.choices) == (QuestionKind.TRUE_FALSE, "True", ())


def _encoded(encode: Callable[[str], str]) -> bytes:
    document = json.loads(OPENTDB)
    for item in document["results"]:
        for key, value in item.items():
            if isinstance(value, str):
                item[key] = encode(_plain(value))
            else:
                item[key] = [encode(_plain(v)) for v in value]
    return json.dumps(document).encode()


def _plain(text: str) -> str:
    return text.replace("&quot;", '"').replace("&#039;", "'").replace("&amp;", "&")


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: quote(s, safe=""),
        lambda s: quote_plus(s, safe=""),
    ],
    ids=["base64", "url3986", "urlLegacy"],
)
def test_opentdb_other_encodings_decode_to_the_same_questions(
    encode: Callable[[str], str],
) -> None:
    expected = parse_questions(OPENTDB, filename="opentdb.json")
    assert parse_questions(_encoded(encode), filename="opentdb.json") == expected


def test_opentdb_error_response_is_explained() -> None:
    data = json.dumps({"response_code": 5, "results": []}).encode()
    assert problems_of(data) == ["Open Trivia DB answered with response_code 5 (rate limited)"]


def test_opentdb_problems_use_its_field_names() -> None:
    document = json.loads(OPENTDB)
    document["results"][1]["type"] = "essay"
    document["results"][0]["question"] = "  "
    assert problems_of(json.dumps(document).encode()) == [
        'question 1, field "question": is required',
        'question 2 ("The Great Fire of London happened in 166..."), '
        'field "type": must be "multiple" or "boolean" (got "essay")',
    ]


# --------------------------------------------------------------------------- Red trivia


def test_red_list_skips_author_and_config_and_keeps_answers_as_typed() -> None:
    parsed = parse_file(RED, filename="general_knowledge.yaml")
    assert parsed.fmt == "red-trivia"
    spider, pi, python, earth, paris = parsed.records
    assert spider.topic == "General Knowledge" and spider.category == "General"
    assert (spider.answer, spider.accepted) == ("8", ("eight",))
    assert (pi.answer, pi.accepted) == ("3.14", ())
    # A YAML float would have made this 3.1: the wrong answer.
    assert (python.answer, python.accepted) == ("3.10", ("Python 3.10",))
    assert (earth.answer, earth.accepted) == ("yes", ("true",))
    assert paris.answer == "Paris"
    assert {(r.kind, r.difficulty, r.source) for r in parsed.records} == {
        (QuestionKind.FREE_TEXT, Difficulty.MEDIUM, "red")
    }


def test_red_topic_comes_from_the_file_stem_or_the_default() -> None:
    data = b"AUTHOR: me\nCapital of Peru?:\n- Lima\n"
    assert parse_questions(data, filename="worldcapitals.yaml")[0].topic == "Worldcapitals"
    assert parse_questions(data, filename="x.yaml", default_topic="Capitals")[0].topic == (
        "Capitals"
    )


def test_red_question_without_answers_is_reported() -> None:
    data = b"Capital of Peru?: []\nCapital of Chile?:\n- Santiago\n"
    assert problems_of(data, "capitals.yaml") == [
        'question 1 ("Capital of Peru?"), field "answers": is required'
    ]


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("filename", "data", "fmt"),
    [
        ("physics.yaml", OURS_YAML, "quizbot-yaml"),
        ("physics.yml", OURS_YAML, "quizbot-yaml"),
        ("history.json", OURS_JSON, "quizbot-json"),
        ("geo.csv", OURS_CSV, "quizbot-csv"),
        ("api.json", OPENTDB, "opentdb"),
        ("worldcapitals.yaml", RED, "red-trivia"),
        # No telling extension: the content decides.
        ("message.txt", OURS_JSON, "quizbot-json"),
        ("message.txt", OURS_CSV, "quizbot-csv"),
        ("message.txt", OPENTDB, "opentdb"),
        ("message.txt", RED, "red-trivia"),
        ("message.txt", OURS_YAML, "quizbot-yaml"),
    ],
)
def test_detect_format(filename: str, data: bytes, fmt: str) -> None:
    assert detect_format(filename, data) == fmt
    assert parse_file(data, filename=filename).fmt == fmt


def test_an_explicit_format_overrides_detection() -> None:
    records = parse_questions(RED, filename="trivia.txt", fmt="red-trivia")
    assert len(records) == 5
    with pytest.raises(InvalidInputError, match='unknown format "xml"'):
        parse_questions(RED, filename="trivia.txt", fmt="xml")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"difficulty": "impossible"},
            'field "difficulty": must be easy, medium or hard (got "impossible")',
        ),
        ({"difficulty": None}, 'field "difficulty": is required (one of easy, medium or hard)'),
        (
            {"kind": "essay"},
            'field "kind": must be multiple_choice, true_false or free_text (got "essay")',
        ),
        ({"category": "  "}, 'field "category": is required'),
        ({"answer": None}, 'field "answer": is required'),
        (
            {"choices": ["100"]},
            'field "choices": a multiple_choice question needs 2 to 10 choices (got 1)',
        ),
        (
            {"choices": [str(n) for n in range(95, 106)]},
            'field "choices": a multiple_choice question needs 2 to 10 choices (got 11)',
        ),
        (
            {"choices": ["100", "90", "100"]},
            'field "choices": choices must be distinct ("100" appears twice)',
        ),
        ({"choices": "90, 100"}, 'field "choices": must be a list, not a str'),
        ({"choices": ["90", ""]}, 'field "choices": item 2 is empty'),
        (
            {"choices": ["90", "x" * 201]},
            'field "choices": item 2 is too long (201 characters; the limit is 200)',
        ),
        ({"answer": "101"}, 'field "answer": must be one of the choices (got "101")'),
        (
            {"kind": "true_false", "choices": None, "answer": "Maybe"},
            'field "answer": must be True or False for a true_false question (got "Maybe")',
        ),
        ({"kind": "free_text"}, 'field "choices": only multiple_choice questions have choices'),
        (
            {"accepted": ["a hundred"]},
            'field "accepted": only free_text questions have accepted answers',
        ),
        ({"tolerance": 0.5}, 'field "tolerance": only free_text questions have a tolerance'),
        (
            {"kind": "free_text", "choices": None, "answer": "boiling", "tolerance": 1},
            'field "tolerance": only numeric answers have a tolerance (the answer is "boiling")',
        ),
        (
            {"kind": "free_text", "choices": None, "tolerance": -1},
            'field "tolerance": must be a number, 0 or more (got -1)',
        ),
        (
            {"kind": "free_text", "choices": None, "tolerance": "lots"},
            'field "tolerance": must be a number (got "lots")',
        ),
        ({"answer": "x" * 201}, 'field "answer": is too long (201 characters; the limit is 200)'),
        (
            {"explanation": "x" * 2001},
            'field "explanation": is too long (2001 characters; the limit is 2000)',
        ),
        ({"topic": "x" * 65}, 'field "topic": is too long (65 characters; the limit is 64)'),
        ({"category": "x" * 65}, 'field "category": is too long (65 characters; the limit is 64)'),
        (
            {"explaination": "typo"},
            'field "explaination": unknown field (expected topic, category, difficulty, kind, '
            "prompt, choices, answer, accepted, tolerance, explanation)",
        ),
        ({"category": ["a", "b"]}, 'field "category": must be text, not a list'),
    ],
)
def test_each_invalid_field_is_reported_with_its_location(
    fields: dict[str, Any], problem: str
) -> None:
    assert problems_of(one_question(**fields)) == [f"{WHERE}, {problem}"]


def test_prompt_problems() -> None:
    assert problems_of(one_question(prompt=None)) == ['question 1, field "prompt": is required']
    long_prompt = "Why " + "x" * 997
    assert problems_of(one_question(prompt=long_prompt)) == [
        f'question 1 ("Why {"x" * 36}..."), field "prompt": is too long (1001 characters; '
        "the limit is 1000)"
    ]


def test_answers_are_normalised_to_the_choice_and_true_false_spelling() -> None:
    (mc,) = parse_questions(
        one_question(choices=["Paris", "Lyon"], answer="paris"), filename="a.json"
    )
    assert mc.answer == "Paris"
    (tf,) = parse_questions(
        one_question(kind="true_false", choices=None, answer="true"), filename="a.json"
    )
    assert (tf.answer, tf.choices) == ("True", ())
    # Case matters in code: these are two different choices.
    (code,) = parse_questions(
        one_question(choices=["['A', 'b']", "['a', 'b']"], answer="['A', 'b']"), filename="a.json"
    )
    assert code.answer == "['A', 'b']"


def test_one_bad_question_rejects_the_whole_file() -> None:
    good = json.loads(one_question())[0]
    questions = [good | {"prompt": f"Question {n}?"} for n in range(50)]
    questions[37] = questions[37] | {"difficulty": "impossible"}
    with pytest.raises(QuestionFileError) as caught:
        parse_questions(json.dumps(questions).encode(), filename="bank.json")
    assert str(caught.value) == (
        'bank.json was not imported: question 38 ("Question 37?"), field "difficulty": '
        'must be easy, medium or hard (got "impossible")'
    )


def test_the_problem_list_is_capped_with_a_count_of_the_rest() -> None:
    good = json.loads(one_question())[0]
    questions = [good | {"prompt": f"Question {n}?", "difficulty": "impossible"} for n in range(25)]
    with pytest.raises(QuestionFileError) as caught:
        parse_questions(json.dumps(questions).encode(), filename="bank.json")
    lines = str(caught.value).splitlines()
    assert lines[0] == "bank.json was not imported (25 problems, nothing was saved):"
    assert lines[1].startswith('- question 1 ("Question 0?"), field "difficulty"')
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "- ... and 5 more"
    assert len(caught.value.problems) == 25


@pytest.mark.parametrize(
    ("filename", "data", "problem"),
    [
        (
            "a.yaml",
            b"topic: X\nquestions:\n  - prompt: [unclosed\n",
            "invalid YAML at line 4, column 1: ",
        ),
        ("a.json", b'{"topic": "X",\n "questions": [}', "invalid JSON at line 2, column 16: "),
        ("a.yaml", b"", "the file is empty"),
        ("a.csv", b"  \n\n", "the file is empty"),
        ("a.yaml", b"topic: X\nquestions: []\n", "the file contains no questions"),
        (
            "a.json",
            '{"topic": "é"}'.encode("latin-1"),
            "the file is not UTF-8 text (invalid byte at offset 11)",
        ),
        ("a.json", b'{"topic": "X", "questions": {}}', '"questions" must be a list of questions'),
        ("a.json", b'"just text"', "not a question file quizbot recognises"),
    ],
)
def test_file_level_problems(filename: str, data: bytes, problem: str) -> None:
    (found,) = problems_of(data, filename)
    assert found.startswith(problem)


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    data = b"#" * (MAX_IMPORT_BYTES + 1)
    assert problems_of(data, "huge.yaml") == [
        "the file is 5.0 MiB; the limit is 5 MiB (5,242,880 bytes), split it into smaller files"
    ]


def test_a_file_with_too_many_questions_is_refused() -> None:
    header = "topic,category,difficulty,kind,prompt,answer\n"
    rows = [f"T,C,easy,free_text,Q{n}?,A\n" for n in range(MAX_IMPORT_QUESTIONS + 1)]
    assert problems_of((header + "".join(rows)).encode(), "many.csv") == [
        "the file has 10,001 questions; the limit is 10,000 per import, split it into smaller files"
    ]
    at_limit = (header + "".join(rows[:MAX_IMPORT_QUESTIONS])).encode()
    assert len(parse_questions(at_limit, filename="many.csv")) == MAX_IMPORT_QUESTIONS


def test_duplicates_within_a_file_are_kept_for_the_repository_to_count() -> None:
    data = json.dumps(json.loads(one_question()) * 3).encode()
    assert len(parse_questions(data, filename="a.json")) == 3


def test_progress_reports_until_done() -> None:
    calls: list[tuple[int, int]] = []
    parse_questions(OURS_YAML, filename="p.yaml", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (4, 4)


# --------------------------------------------------------------------------- export


def _records() -> list[QuestionRecord]:
    return [
        *parse_questions(OURS_YAML, filename="p.yaml"),
        *parse_questions(OURS_JSON, filename="h.json"),
        *parse_questions(OURS_CSV, filename="g.csv"),
        QuestionRecord(
            topic="Écriture",
            category="Ponctuation",
            difficulty=Difficulty.HARD,
            kind=QuestionKind.FREE_TEXT,
            prompt='Which mark ends a question, "like this"?\nAnswer with its name.',
            choices=(),
            answer="question mark",
            accepted=("?", "point d'interrogation"),
            tolerance=None,
            explanation="Line one,\nline two; with ümlauts and emoji 🎉.",
            source="import",
        ),
    ]


@pytest.mark.parametrize(
    ("fmt", "filename"),
    [("quizbot-json", "b.json"), ("quizbot-yaml", "b.yaml"), ("quizbot-csv", "b.csv")],
)
def test_export_then_parse_gives_the_same_questions(fmt: str, filename: str) -> None:
    records = _records()
    assert parse_questions(export_questions(records, fmt), filename=filename) == records
    single_topic = [r for r in records if r.topic == "Physics"]
    assert parse_questions(export_questions(single_topic, fmt), filename=filename) == single_topic


def test_yaml_export_looks_like_the_bundled_files() -> None:
    text = export_questions(parse_questions(OURS_YAML, filename="p.yaml")[:1], "quizbot-yaml")
    assert text.decode().splitlines()[:3] == [
        "topic: Physics",
        "questions:",
        "- prompt: What is the SI unit of force?",
    ]


def test_csv_export_refuses_a_separator_inside_a_choice() -> None:
    (record,) = parse_questions(one_question(choices=["a|b", "100"]), filename="a.json")
    with pytest.raises(InvalidInputError, match='contains "\\|"'):
        export_questions([record], "quizbot-csv")


def test_export_refuses_an_unknown_format() -> None:
    with pytest.raises(InvalidInputError, match="cannot export as"):
        export_questions(_records(), "opentdb")


def test_record_from_model_and_to_row_are_inverse() -> None:
    record = _records()[2]
    row = record.to_row(guild_id=42, created_by=7)
    assert set(row) <= set(models.Question.__table__.columns.keys())
    question = models.Question(**row)
    assert record_from_model(question) == record


# --------------------------------------------------------------------------- bundled bank


def test_the_bundled_bank_has_its_files() -> None:
    assert len(BUNDLED) >= 11


@pytest.mark.parametrize("path", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_file_parses_cleanly(path: Path) -> None:
    parsed = parse_file(path.read_bytes(), filename=path.name)
    assert parsed.fmt == "quizbot-yaml"
    assert len(parsed.records) >= 20
    assert len({r.prompt for r in parsed.records}) == len(parsed.records)
    assert {r.difficulty for r in parsed.records} == set(Difficulty)


# --------------------------------------------------------------------------- practice


def test_practice_questions_are_many_deterministic_and_distinct() -> None:
    questions = generate_practice_questions()
    assert len(questions) == 240
    assert generate_practice_questions() == questions
    assert generate_practice_questions(seed=7) != questions
    assert len(generate_practice_questions(count=300)) == 300
    assert len({q.prompt for q in questions}) == len(questions)
    assert {q.topic for q in questions} == {"Mathematics Practice"}
    assert Counter(q.category for q in questions) == {
        "Arithmetic": 60,
        "Fractions": 60,
        "Percentages": 60,
        "Equations": 60,
    }
    by_category = {c: {q.difficulty for q in questions if q.category == c} for c in CATEGORIES}
    assert all(levels == set(Difficulty) for levels in by_category.values())
    kinds = Counter(q.kind for q in questions)
    assert kinds[QuestionKind.FREE_TEXT] > kinds[QuestionKind.MULTIPLE_CHOICE] > 20
    assert any(q.tolerance for q in questions)


CATEGORIES = ("Arithmetic", "Fractions", "Percentages", "Equations")


def test_practice_questions_pass_import_validation() -> None:
    questions = generate_practice_questions()
    parsed = parse_questions(export_questions(questions, "quizbot-json"), filename="p.json")
    assert [(q.prompt, q.answer, q.choices, q.accepted, q.tolerance) for q in parsed] == [
        (q.prompt, q.answer, q.choices, q.accepted, q.tolerance) for q in questions
    ]


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def evaluate(expression: str, x: Fraction | None = None) -> Fraction:
    """Exact value of an expression as the prompts write it ("3/4 ÷ 2/5", "2(x + 3)")."""
    source = re.sub(r"(\d+)/(\d+)", r"(\1/\2)", expression)  # a fraction is one number
    source = source.replace("×", "*").replace("÷", "/").replace("−", "-").replace("²", "**2")
    source = re.sub(r"(\d)\s*(x|\()", r"\1*\2", source)  # 3x → 3*x, 2(x → 2*(x

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        if isinstance(node, ast.Name) and node.id == "x" and x is not None:
            return x
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp):
            return Fraction(_OPERATORS[type(node.op)](walk(node.left), walk(node.right)))
        raise AssertionError(f"unexpected {ast.dump(node)} in {expression!r}")

    return walk(ast.parse(source, mode="eval").body)


def solve_linear(equation: str) -> Fraction:
    left, right = equation.split(" = ")

    def f(x: Fraction) -> Fraction:
        return evaluate(left, x) - evaluate(right, x)

    slope = f(Fraction(1)) - f(Fraction(0))
    assert slope != 0, equation
    return -f(Fraction(0)) / slope


F = Fraction
# (pattern, exact value from the match, decimal places of a rounded answer)
PRACTICE_PATTERNS: list[tuple[str, Callable[[re.Match[str]], Fraction], int | None]] = [
    (r"What is (\d+)% of (\d+)\?", lambda m: F(int(m[1]), 100) * int(m[2]), None),
    (r"What is (\d+/\d+) of (\d+)\?", lambda m: F(m[1]) * int(m[2]), None),
    (r"What percentage of (\d+) is ([\d.]+)\?", lambda m: F(m[2]) / int(m[1]) * 100, None),
    (
        r"A price of (\d+) is reduced by (\d+)%\. What is the new price\?",
        lambda m: int(m[1]) * (1 - F(int(m[2]), 100)),
        None,
    ),
    (
        r"(\d+) is increased by (\d+)%\. What is the result\?",
        lambda m: int(m[1]) * (1 + F(int(m[2]), 100)),
        None,
    ),
    (
        r"A value (?:rises|falls) from (\d+) to ([\d.]+)\. What is the percentage "
        r"(?:increase|decrease)\?",
        lambda m: abs(F(m[2]) - int(m[1])) / int(m[1]) * 100,
        None,
    ),
    (
        r"After a (\d+)% increase, a price is ([\d.]+)\. What was the original price\?",
        lambda m: F(m[2]) / (1 + F(int(m[1]), 100)),
        None,
    ),
    (
        r"What is (\d+) as a percentage of (\d+), to 1 decimal place\?",
        lambda m: F(int(m[1]), int(m[2])) * 100,
        1,
    ),
    (
        r"An amount of (\d+) grows by (\d+)% each year, compounded\. "
        r"How much is it after 2 years\?",
        lambda m: int(m[1]) * (1 + F(int(m[2]), 100)) ** 2,
        None,
    ),
    (r"Simplify (\d+/\d+) to lowest terms\.", lambda m: F(m[1]), None),
    (r"Write ([\d.]+) as a fraction in lowest terms\.", lambda m: F(m[1]), None),
    (r"Write (\d+/\d+) as a decimal\.", lambda m: F(m[1]), None),
    (
        r"Write (\d+) (\d+/\d+) as an improper fraction\.",
        lambda m: int(m[1]) + F(m[2]),
        None,
    ),
    (r"Solve for x: (.+)", lambda m: solve_linear(m[1]), None),
    (r"What is (.+), rounded to 2 decimal places\?", lambda m: evaluate(m[1]), 2),
    (r"What is (.+?)\?(?: Give the answer in lowest terms\.)?", lambda m: evaluate(m[1]), None),
]


def exact_value(prompt: str) -> tuple[Fraction, int | None]:
    for pattern, value, places in PRACTICE_PATTERNS:
        match = re.fullmatch(pattern, prompt)
        if match:
            return value(match), places
    raise AssertionError(f"no independent check for {prompt!r}")


def number(text: str) -> Fraction:
    """ "11/12", "-3", "14.29", "25%", "1 5/12" → exact value."""
    text = text.removesuffix("%")
    if " " in text:
        whole, part = text.split(" ")
        return int(whole) + F(part) if not whole.startswith("-") else int(whole) - F(part)
    return F(text)


def half_up(value: Fraction, places: int) -> Fraction:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return F(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("question", generate_practice_questions(), ids=lambda q: q.prompt)
def test_practice_arithmetic_is_right(question: QuestionRecord) -> None:
    exact, places = exact_value(question.prompt)
    if places is None:
        assert number(question.answer) == exact
        assert question.tolerance is None
    else:
        assert number(question.answer) == half_up(exact, places)
        assert len(question.answer.removesuffix("%").partition(".")[2]) == places
        if question.kind == QuestionKind.FREE_TEXT:
            assert question.tolerance is not None
            assert abs(exact - number(question.answer)) <= F(question.tolerance)
    if "/" in question.answer:
        assert str(F(question.answer)) == question.answer, "fraction in lowest terms"
    for form in question.accepted:
        assert number(form) == number(question.answer), form
    if question.kind == QuestionKind.MULTIPLE_CHOICE:
        assert len(question.choices) == 4 and question.answer in question.choices
        assert [number(c) for c in question.choices] == sorted(number(c) for c in question.choices)
        assert sum(number(c) == number(question.answer) for c in question.choices) == 1
    assert question.answer in question.explanation, "the worked solution ends at the answer"


def test_fraction_answers_accept_exact_decimals_only_when_they_exist() -> None:
    questions = {q.prompt: q for q in generate_practice_questions(count=800)}
    halves = [
        q
        for q in questions.values()
        if q.kind == QuestionKind.FREE_TEXT
        and q.answer in ("1/2", "3/4", "5/4", "3/2", "7/10")
        and "as a fraction" not in q.prompt
        and "Simplify" not in q.prompt
    ]
    assert halves, "some fraction answers have a terminating decimal"
    for q in halves:
        assert str(number(q.answer).numerator / number(q.answer).denominator) in q.accepted
    thirds = [
        q
        for q in questions.values()
        if q.answer.endswith("/3") and q.kind == QuestionKind.FREE_TEXT
    ]
    assert thirds and all(not any("." in a for a in q.accepted) for q in thirds)
