"""Question files: read our JSON/YAML/CSV schema, Open Trivia DB and Red trivia lists; write ours.

Pure functions with no database access. The service calls them in a worker thread,
so a big file never blocks the event loop. An import is all or nothing: a file with
any invalid question raises `QuestionFileError` that lists every problem and where it is.
"""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import enum
import html
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import PurePath
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus

import yaml

from quizbot.errors import InvalidInputError
from quizbot.models import Difficulty, Question, QuestionKind

try:  # libyaml is ~10x faster on a 5 MB file; PyYAML may be built without it
    from yaml import CSafeDumper as _SafeDumper
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _SafeDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_QUESTIONS = 10_000
# Listing more problems than this buries the first ones; the rest are counted.
MAX_LISTED_PROBLEMS = 20

QUIZBOT_JSON = "quizbot-json"
QUIZBOT_YAML = "quizbot-yaml"
QUIZBOT_CSV = "quizbot-csv"
OPENTDB = "opentdb"
RED_TRIVIA = "red-trivia"
IMPORT_FORMATS = (QUIZBOT_JSON, QUIZBOT_YAML, QUIZBOT_CSV, OPENTDB, RED_TRIVIA)
EXPORT_FORMATS = (QUIZBOT_JSON, QUIZBOT_YAML, QUIZBOT_CSV)
# The file extension each export format is usually saved with.
EXPORT_EXTENSIONS = {QUIZBOT_JSON: "json", QUIZBOT_YAML: "yaml", QUIZBOT_CSV: "csv"}

# Column sizes of quizbot/models/question.py, and what stays readable in a Discord embed.
MAX_PROMPT = 1000
MAX_ANSWER = 200
MAX_EXPLANATION = 2000
MAX_NAME = 64
MIN_CHOICES, MAX_CHOICES = 2, 10

FIELDS = (
    "topic",
    "category",
    "difficulty",
    "kind",
    "prompt",
    "choices",
    "answer",
    "accepted",
    "tolerance",
    "explanation",
)
CSV_COLUMNS = FIELDS
_REQUIRED = ("topic", "category", "difficulty", "kind", "prompt", "answer")
CSV_SEPARATOR = "|"

OPENTDB_EXPLANATION = "Imported from Open Trivia DB (no explanation provided)."
RED_EXPLANATION = "Imported from a Red-DiscordBot trivia list (no explanation provided)."
# Keys of a Red trivia list that are not questions.
_RED_RESERVED = frozenset({"AUTHOR", "CONFIG", "DESCRIPTION"})
_OPENTDB_KINDS = {"multiple": QuestionKind.MULTIPLE_CHOICE, "boolean": QuestionKind.TRUE_FALSE}
_OPENTDB_RESPONSE_CODES = {
    1: "no results (the query asked for more questions than exist)",
    2: "invalid parameter",
    3: "session token not found",
    4: "session token exhausted",
    5: "rate limited",
}
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_PROGRESS_EVERY = 250


@dataclass(frozen=True)
class QuestionRecord:
    """One validated question, ready to insert or to export."""

    topic: str
    category: str
    difficulty: Difficulty
    kind: QuestionKind
    prompt: str
    choices: tuple[str, ...]
    answer: str
    accepted: tuple[str, ...]
    tolerance: float | None
    explanation: str
    source: str

    def to_row(self, *, guild_id: int | None, created_by: int | None = None) -> dict[str, Any]:
        """Column values for `QuestionRepository.add_many` (which adds `content_hash`)."""
        return {
            "guild_id": guild_id,
            "topic": self.topic,
            "category": self.category,
            "difficulty": self.difficulty,
            "kind": self.kind,
            "prompt": self.prompt,
            "choices": list(self.choices),
            "answer": self.answer,
            "accepted": list(self.accepted),
            "tolerance": self.tolerance,
            "explanation": self.explanation,
            "source": self.source,
            "created_by": created_by,
        }


@dataclass(frozen=True)
class ParsedFile:
    """A parsed file: the format it was read as and its questions in file order."""

    fmt: str
    records: list[QuestionRecord]


class QuestionFileError(InvalidInputError):
    """A question file that cannot be imported; `problems` lists every reason and where it is."""

    def __init__(self, filename: str, problems: Sequence[str]) -> None:
        self.filename = filename
        self.problems = list(problems)
        super().__init__(_summarise(filename, self.problems))


def _summarise(filename: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{filename} was not imported: {problems[0]}"
    lines = [f"{filename} was not imported ({len(problems)} problems, nothing was saved):"]
    lines += [f"- {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"- ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry points


def detect_format(filename: str, data: bytes) -> str:
    """The import format of a file, from its extension and its content.

    Raises:
        QuestionFileError: too big, not UTF-8, malformed, or no format fits.
    """
    text = _decode(filename, data)
    syntax = _sniff_syntax(filename, text)
    if syntax == "csv":
        return QUIZBOT_CSV
    return _classify(filename, syntax, _load(filename, syntax, text))


def parse_questions(
    data: bytes,
    *,
    filename: str,
    fmt: str | None = None,
    default_topic: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[QuestionRecord]:
    """Validated questions of a file, in file order (see `parse_file`)."""
    return parse_file(
        data, filename=filename, fmt=fmt, default_topic=default_topic, progress=progress
    ).records


def parse_file(
    data: bytes,
    *,
    filename: str,
    fmt: str | None = None,
    default_topic: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ParsedFile:
    """Parse and validate a whole file; any invalid question rejects the file.

    Args:
        data: the file's bytes (UTF-8, a BOM is fine).
        filename: used to detect the format, to name a Red list's topic, and in messages.
        fmt: one of IMPORT_FORMATS; None detects it.
        default_topic: topic of questions that do not name one (and of a Red list).
        progress: called with (questions checked, total) while validating.

    Returns:
        The format read and the questions (duplicates within the file are kept).

    Raises:
        QuestionFileError: with every problem found and where it is.
        InvalidInputError: `fmt` is not a known format.
    """
    if fmt is not None and fmt not in IMPORT_FORMATS:
        raise InvalidInputError(f'unknown format "{fmt}": use one of {", ".join(IMPORT_FORMATS)}')
    text = _decode(filename, data)
    problems = _Problems()
    if fmt == QUIZBOT_CSV or (fmt is None and _sniff_syntax(filename, text) == "csv"):
        fmt, entries = QUIZBOT_CSV, _csv_entries(filename, text, default_topic, problems)
    else:
        syntax = _syntax_of(fmt) if fmt else _sniff_syntax(filename, text)
        document = _load(filename, syntax, text)
        fmt = fmt or _classify(filename, syntax, document)
        entries = _ENTRY_READERS[fmt](filename, document, default_topic, problems)
    _check_count(filename, len(entries), problems)
    records = _validate_all(entries, problems, progress)
    problems.raise_if_any(filename)
    return ParsedFile(fmt, records)


def export_questions(records: Sequence[QuestionRecord], fmt: str) -> bytes:
    """Serialise questions in one of our formats; `parse_questions` reads the result back.

    Raises:
        InvalidInputError: unknown format, or a CSV cell would need the `|` separator.
    """
    if fmt == QUIZBOT_CSV:
        return _export_csv(records)
    if fmt == QUIZBOT_JSON:
        return (json.dumps(_export_document(records), ensure_ascii=False, indent=2) + "\n").encode()
    if fmt == QUIZBOT_YAML:
        dumped = yaml.dump(
            _export_document(records),
            Dumper=_SafeDumper,
            allow_unicode=True,
            sort_keys=False,
            default_flow_style=None,  # lists of choices inline, as in the bundled files
            width=100,
        )
        return dumped.encode()
    raise InvalidInputError(f'cannot export as "{fmt}": use one of {", ".join(EXPORT_FORMATS)}')


def record_from_model(q: Question) -> QuestionRecord:
    """The record of a stored question (for export)."""
    return QuestionRecord(
        topic=q.topic,
        category=q.category,
        difficulty=Difficulty(q.difficulty),
        kind=QuestionKind(q.kind),
        prompt=q.prompt,
        choices=tuple(q.choices or ()),
        answer=q.answer,
        accepted=tuple(q.accepted or ()),
        tolerance=q.tolerance,
        explanation=q.explanation,
        source=q.source,
    )


# --------------------------------------------------------------------------- loading


class _TextLoader(_SafeLoader):
    """YAML whose scalars stay text (except null): `3.10`, `yes` and `1e3` mean what was typed."""


# YAML 1.1 would turn `answer: yes` into True and `answer: 3.10` into 3.1; a quiz
# answer must keep its author's spelling, so only null and merge keys are resolved.
_TextLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")
    ]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}


def _decode(filename: str, data: bytes) -> str:
    if len(data) > MAX_IMPORT_BYTES:
        raise QuestionFileError(
            filename,
            [
                f"the file is {len(data) / 1024 / 1024:.1f} MiB; the limit is "
                f"{MAX_IMPORT_BYTES // 1024 // 1024} MiB ({MAX_IMPORT_BYTES:,} bytes), "
                "split it into smaller files"
            ],
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuestionFileError(
            filename,
            [f"the file is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8"],
        ) from exc
    if not text.strip():
        raise QuestionFileError(filename, ["the file is empty"])
    return text


def _sniff_syntax(filename: str, text: str) -> str:
    extension = PurePath(filename).suffix.lower()
    if extension == ".csv":
        return "csv"
    if extension == ".json":
        return "json"
    if extension in (".yaml", ".yml"):
        return "yaml"
    # No telling extension (a pasted file arrives as message.txt): look at the text.
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return "json"
    if _csv_dialect(stripped.split("\n", 1)[0]) is not None:
        return "csv"
    return "yaml"


def _syntax_of(fmt: str) -> str:
    return "json" if fmt in (QUIZBOT_JSON, OPENTDB) else "yaml"


def _load(filename: str, syntax: str, text: str) -> Any:
    try:
        if syntax == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_TextLoader)  # a SafeLoader subclass: no arbitrary objects
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit limit
        problem = f"invalid JSON: {exc}"
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = f"invalid YAML{where}: {exc.problem or exc.context}"
    except yaml.YAMLError as exc:
        problem = f"invalid YAML: {exc}"
    except RecursionError:
        problem = "the file is nested too deeply"
    raise QuestionFileError(filename, [problem])


def _classify(filename: str, syntax: str, document: Any) -> str:
    ours = QUIZBOT_JSON if syntax == "json" else QUIZBOT_YAML
    if isinstance(document, list):
        return ours
    if isinstance(document, Mapping):
        if "results" in document and "response_code" in document:
            return OPENTDB
        if "questions" in document:
            return ours
        if syntax == "yaml":
            return RED_TRIVIA  # a Red list is a mapping of question to answers
    raise QuestionFileError(
        filename,
        [
            'not a question file quizbot recognises: expected {"topic": ..., "questions": [...]}, '
            "a list of questions, an Open Trivia DB response or a Red trivia list"
        ],
    )


def _check_count(filename: str, count: int, problems: _Problems) -> None:
    if count > MAX_IMPORT_QUESTIONS:
        raise QuestionFileError(
            filename,
            [
                f"the file has {count:,} questions; the limit is {MAX_IMPORT_QUESTIONS:,} "
                "per import, split it into smaller files"
            ],
        )
    if count == 0 and not problems:
        raise QuestionFileError(filename, ["the file contains no questions"])


# --------------------------------------------------------------------------- entries


class _Rejected:
    """A value a reader already knows is wrong, with the reason to report."""

    def __init__(self, message: str) -> None:
        self.message = message


@dataclass(frozen=True)
class _Entry:
    """One question as read from a file, before validation."""

    where: str  # "question 12" or "line 14"
    values: Mapping[str, Any]
    source: str
    # How the file spells our field names, for messages ("answer" is "correct_answer" in OpenTDB).
    labels: Mapping[str, str] = field(default_factory=dict)
    # Fields the format does not have (a typo such as "explaination" would lose data).
    unknown: tuple[str, ...] = ()
    # Set when the reader could not make sense of the entry at all; reported in file order.
    broken: str | None = None


class _Problems:
    """Problems of one file, in file order."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, problem: str) -> None:
        self.items.append(problem)

    def raise_if_any(self, filename: str) -> None:
        if self.items:
            raise QuestionFileError(filename, self.items)


_EntryReader = Callable[[str, Any, str | None, _Problems], list[_Entry]]


def _quizbot_entries(
    filename: str, document: Any, default_topic: str | None, problems: _Problems
) -> list[_Entry]:
    topic: Any = default_topic
    items: Any = document
    if isinstance(document, Mapping):
        for key in document:
            if key not in ("topic", "questions"):
                problems.add(f'unknown top-level key "{key}" (expected "topic" and "questions")')
        topic = document.get("topic") or default_topic
        items = document.get("questions")
    if not isinstance(items, list):
        problems.add('"questions" must be a list of questions')
        problems.raise_if_any(filename)
    entries = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            message = f"question {number}: must be a mapping of fields, not {_kind_of(item)}"
            entries.append(_Entry(f"question {number}", {}, "import", broken=message))
            continue
        values = {**item, "topic": item.get("topic") or topic}
        unknown = tuple(str(key) for key in item if key not in FIELDS)
        entries.append(_Entry(f"question {number}", values, "import", unknown=unknown))
    return entries


def _csv_dialect(header_line: str) -> str | None:
    """The delimiter that splits a header line into our columns (Excel may use ; or tab)."""
    for delimiter in (",", ";", "\t"):
        names = {c.strip().strip('"').lower() for c in header_line.split(delimiter)}
        if len(names & set(CSV_COLUMNS)) >= 2:
            return delimiter
    return None


def _csv_entries(
    filename: str, text: str, default_topic: str | None, problems: _Problems
) -> list[_Entry]:
    lines = text.lstrip("\r\n")
    skipped = len(text) - len(lines)
    first_line = text.count("\n", 0, skipped) + 1
    delimiter = _csv_dialect(lines.split("\n", 1)[0]) or ","
    reader = csv.reader(io.StringIO(lines, newline=""), delimiter=delimiter)
    try:
        header = [c.strip().lower() for c in next(reader)]
        columns = _csv_columns(header, default_topic)
        entries = []
        end = reader.line_num
        for row in reader:
            line, end = first_line + end, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            entries.append(_csv_entry(line, row, columns, default_topic))
    except csv.Error as exc:
        raise QuestionFileError(
            filename, [f"invalid CSV at line {first_line + reader.line_num - 1}: {exc}"]
        ) from exc
    except _HeaderError as exc:
        raise QuestionFileError(filename, [f"line {first_line}: {exc}"]) from exc
    return entries


class _HeaderError(Exception):
    """The CSV header row is unusable."""


def _csv_columns(header: list[str], default_topic: str | None) -> list[str]:
    unknown = [c for c in header if c not in CSV_COLUMNS]
    required = [c for c in _REQUIRED if not (c == "topic" and default_topic)]
    missing = [c for c in required if c not in header]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if unknown or missing or repeated:
        parts = []
        if missing:
            parts.append(_columns("missing", missing))
        if unknown:
            parts.append(_columns("unknown", unknown))
        if repeated:
            parts.append(_columns("repeated", repeated))
        raise _HeaderError(f"{'; '.join(parts)}; the header must be {','.join(CSV_COLUMNS)}")
    return header


def _columns(what: str, names: list[str]) -> str:
    plural = "s" if len(names) > 1 else ""
    return f"{what} column{plural} " + ", ".join(f'"{n}"' for n in names)


def _csv_entry(line: int, row: list[str], columns: list[str], default_topic: str | None) -> _Entry:
    where = f"line {line}"
    if len(row) > len(columns):
        # Usually a comma inside an unquoted prompt.
        message = (
            f"{_where(where, row[columns.index('prompt')])}: {len(row)} values but the header "
            f"has {len(columns)} columns (put text containing commas in double quotes, "
            '"like, this")'
        )
        return _Entry(where, {}, "import", broken=message)
    values: dict[str, Any] = dict(zip(columns, row, strict=False))
    for name in ("choices", "accepted"):
        cell = values.get(name, "")
        values[name] = [part.strip() for part in cell.split(CSV_SEPARATOR) if part.strip()]
    for name in ("tolerance", "explanation"):
        values[name] = values.get(name) or None
    values["topic"] = values.get("topic") or default_topic
    return _Entry(where, values, "import")


def _opentdb_entries(
    filename: str, document: Any, default_topic: str | None, problems: _Problems
) -> list[_Entry]:
    if not isinstance(document, Mapping):
        raise QuestionFileError(filename, ["an Open Trivia DB response must be a JSON object"])
    code = str(document.get("response_code"))
    if code != "0":
        meaning = _OPENTDB_RESPONSE_CODES.get(int(code) if code.isdigit() else -1, "unknown error")
        raise QuestionFileError(
            filename, [f"Open Trivia DB answered with response_code {code} ({meaning})"]
        )
    results = document.get("results")
    if not isinstance(results, list):
        raise QuestionFileError(filename, ['"results" must be a list of questions'])
    decode = _opentdb_decoder(results)
    entries = []
    for number, item in enumerate(results, 1):
        if not isinstance(item, Mapping):
            message = f"question {number}: must be an object, not {_kind_of(item)}"
            entries.append(_Entry(f"question {number}", {}, "opentdb", broken=message))
            continue
        entries.append(_opentdb_entry(number, _decode_strings(item, decode)))
    return entries


def _opentdb_entry(number: int, item: Mapping[str, Any]) -> _Entry:
    topic, category = item.get("category"), item.get("category")
    if isinstance(category, str) and ":" in category:
        # "Science: Computers" is a topic and a category; "History" is both.
        topic, _, category = (part.strip() for part in category.partition(":"))
    kind: Any = _OPENTDB_KINDS.get(str(item.get("type")))
    if kind is None:
        kind = _Rejected(f'must be "multiple" or "boolean" (got "{item.get("type")}")')
    wrong = item.get("incorrect_answers")
    choices: Any = []
    if kind == QuestionKind.MULTIPLE_CHOICE:
        if isinstance(wrong, list):
            # The API shuffles answers; sorting keeps re-imports and exports stable.
            correct = item.get("correct_answer")
            options = wrong if correct is None else [correct, *wrong]
            choices = sorted(options, key=lambda o: (str(o).casefold(), str(o)))
        else:
            choices = _Rejected(f"must be a list of answers, not {_kind_of(wrong)}")
    values = {
        "topic": topic,
        "category": category,
        "difficulty": item.get("difficulty"),
        "kind": kind,
        "prompt": item.get("question"),
        "choices": choices,
        "answer": item.get("correct_answer"),
        "explanation": OPENTDB_EXPLANATION,
    }
    labels = {
        "kind": "type",
        "prompt": "question",
        "answer": "correct_answer",
        "choices": "incorrect_answers",
    }
    return _Entry(f"question {number}", values, "opentdb", labels)


def _opentdb_decoder(results: list[Any]) -> Callable[[str], str]:
    """How the API encoded the strings: HTML entities (default), url3986/urlLegacy or base64."""
    items = [r for r in results if isinstance(r, Mapping)]
    types = {r.get("type") for r in items}
    # base64 encodes even the type: "multiple" is bXVsdGlwbGU=, "boolean" Ym9vbGVhbg==.
    if types and types <= {"bXVsdGlwbGU=", "Ym9vbGVhbg=="}:
        return _from_base64
    questions = [q for q in (r.get("question") for r in items) if isinstance(q, str)]
    # URL encodings leave no literal space in any question and escape punctuation as %XX.
    if (
        questions
        and all(" " not in q for q in questions)
        and any(_PERCENT_ESCAPE.search(q) for q in questions)
    ):
        return unquote_plus if any("+" in q for q in questions) else unquote
    return html.unescape


def _from_base64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value  # left as is; validation reports it if it makes no sense


def _decode_strings(value: Any, decode: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return decode(value)
    if isinstance(value, list):
        return [_decode_strings(v, decode) for v in value]
    if isinstance(value, Mapping):
        return {k: _decode_strings(v, decode) for k, v in value.items()}
    return value


def _red_entries(
    filename: str, document: Any, default_topic: str | None, problems: _Problems
) -> list[_Entry]:
    if not isinstance(document, Mapping):
        raise QuestionFileError(filename, ["a Red trivia list must map each question to answers"])
    topic = default_topic or _topic_from_filename(filename)
    questions = [(q, a) for q, a in document.items() if q not in _RED_RESERVED]
    entries = []
    for number, (question, answers) in enumerate(questions, 1):
        # Red wants a list; a lone answer means the same thing.
        texts = answers if isinstance(answers, list) else [answers]
        values = {
            "topic": topic,
            "category": "General",
            "difficulty": Difficulty.MEDIUM,
            "kind": QuestionKind.FREE_TEXT,
            "prompt": question,
            "answer": texts[0] if texts else None,
            "accepted": texts[1:],
            "explanation": RED_EXPLANATION,
        }
        labels = {"answer": "answers", "accepted": "answers"}
        entries.append(_Entry(f"question {number}", values, "red", labels))
    return entries


def _topic_from_filename(filename: str) -> str:
    """ "worldcapitals.yaml" → "Worldcapitals", "world_capitals.yml" → "World Capitals"."""
    words = re.split(r"[\s_\-]+", PurePath(filename).stem.strip())
    topic = " ".join(w[:1].upper() + w[1:] for w in words if w)
    return topic[:MAX_NAME] or "Imported"


_ENTRY_READERS: dict[str, _EntryReader] = {
    QUIZBOT_JSON: _quizbot_entries,
    QUIZBOT_YAML: _quizbot_entries,
    OPENTDB: _opentdb_entries,
    RED_TRIVIA: _red_entries,
}


# --------------------------------------------------------------------------- validation


class _FieldError(Exception):
    """One field's value is invalid; the message says why."""


def _validate_all(
    entries: list[_Entry],
    problems: _Problems,
    progress: Callable[[int, int], None] | None,
) -> list[QuestionRecord]:
    records = []
    total = len(entries)
    for done, entry in enumerate(entries, 1):
        record = _validate(entry, problems)
        if record is not None:
            records.append(record)
        if progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
    return records


def _validate(entry: _Entry, problems: _Problems) -> QuestionRecord | None:
    """The record of an entry, or None after adding each of its problems."""
    if entry.broken is not None:
        problems.add(entry.broken)
        return None
    where = _where(entry.where, entry.values.get("prompt"))
    for name in entry.unknown:
        problems.add(f'{where}, field "{name}": unknown field (expected {", ".join(FIELDS)})')
    failed = bool(entry.unknown)

    def check(name: str, parse: Callable[[Any], T]) -> T | None:
        nonlocal failed
        value = entry.values.get(name)
        try:
            if isinstance(value, _Rejected):
                raise _FieldError(value.message)
            return parse(value)
        except _FieldError as exc:
            failed = True
            problems.add(f'{where}, field "{entry.labels.get(name, name)}": {exc}')
            return None

    topic = check("topic", lambda v: _required_text(v, MAX_NAME))
    category = check("category", lambda v: _required_text(v, MAX_NAME))
    difficulty = check("difficulty", lambda v: _member(v, Difficulty, "easy, medium or hard"))
    kind = check(
        "kind",
        lambda v: _member(v, QuestionKind, "multiple_choice, true_false or free_text"),
    )
    prompt = check("prompt", lambda v: _required_text(v, MAX_PROMPT))
    choices = check("choices", lambda v: _text_list(v, MAX_ANSWER))
    answer = check("answer", lambda v: _required_text(v, MAX_ANSWER))
    accepted = check("accepted", lambda v: _text_list(v, MAX_ANSWER))
    tolerance = check("tolerance", _tolerance)
    explanation = check("explanation", lambda v: _optional_text(v, MAX_EXPLANATION))
    if failed:
        return None
    assert topic and category and difficulty and kind and prompt and answer  # for mypy
    assert choices is not None and accepted is not None and explanation is not None
    record = QuestionRecord(
        topic=topic,
        category=category,
        difficulty=difficulty,
        kind=kind,
        prompt=prompt,
        choices=choices,
        answer=answer,
        accepted=accepted,
        tolerance=tolerance,
        explanation=explanation,
        source=entry.source,
    )
    try:
        return _check_kind(record)
    except _KindError as exc:
        problems.add(f'{where}, field "{entry.labels.get(exc.name, exc.name)}": {exc}')
        return None


class _KindError(Exception):
    """A field does not fit the question's kind."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _check_kind(r: QuestionRecord) -> QuestionRecord:
    """Rules that depend on the kind; returns the record with its spelling normalised."""
    if r.kind != QuestionKind.FREE_TEXT and r.accepted:
        raise _KindError("accepted", "only free_text questions have accepted answers")
    if r.tolerance is not None:
        if r.kind != QuestionKind.FREE_TEXT:
            raise _KindError("tolerance", "only free_text questions have a tolerance")
        if not _is_number(r.answer):
            raise _KindError(
                "tolerance", f'only numeric answers have a tolerance (the answer is "{r.answer}")'
            )
    if r.kind == QuestionKind.MULTIPLE_CHOICE:
        return _check_multiple_choice(r)
    if r.kind == QuestionKind.TRUE_FALSE:
        return _check_true_false(r)
    if r.choices:
        raise _KindError("choices", "only multiple_choice questions have choices")
    # Exact repeats add nothing; case is kept, since code answers may depend on it.
    accepted = tuple(dict.fromkeys(a for a in r.accepted if a != r.answer))
    return dataclasses.replace(r, accepted=accepted)


def _check_multiple_choice(r: QuestionRecord) -> QuestionRecord:
    if not MIN_CHOICES <= len(r.choices) <= MAX_CHOICES:
        raise _KindError(
            "choices",
            f"a multiple_choice question needs {MIN_CHOICES} to {MAX_CHOICES} choices "
            f"(got {len(r.choices)})",
        )
    # Exact comparison: "['A', 'b']" and "['a', 'b']" are different answers in a code question.
    repeated = next((c for i, c in enumerate(r.choices) if c in r.choices[:i]), None)
    if repeated is not None:
        raise _KindError("choices", f'choices must be distinct ("{repeated}" appears twice)')
    if r.answer in r.choices:
        return r
    # "paris" among ["Paris", ...] is the author's answer, spelt as the choice is.
    same = [c for c in r.choices if c.casefold() == r.answer.casefold()]
    if len(same) != 1:
        raise _KindError("answer", f'must be one of the choices (got "{r.answer}")')
    return dataclasses.replace(r, answer=same[0])


def _check_true_false(r: QuestionRecord) -> QuestionRecord:
    if r.choices and {c.casefold() for c in r.choices} != {"true", "false"}:
        raise _KindError("choices", "only multiple_choice questions have choices")
    if r.answer.casefold() not in ("true", "false"):
        raise _KindError(
            "answer", f'must be True or False for a true_false question (got "{r.answer}")'
        )
    return dataclasses.replace(r, answer=r.answer.capitalize(), choices=())


def _where(label: str, prompt: Any) -> str:
    """'question 12 ("What is the boiling...")': a location a person can find in the file."""
    if not isinstance(prompt, str) or not prompt.strip():
        return label
    text = " ".join(prompt.split())
    return f'{label} ("{text[:40]}...")' if len(text) > 40 else f'{label} ("{text}")'


def _kind_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return f"a {type(value).__name__}"


def _scalar_text(value: Any) -> str | None:
    """Text of a scalar; JSON numbers and booleans become their usual spelling."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise _FieldError(f"must be text, not {_kind_of(value)}")


def _required_text(value: Any, limit: int) -> str:
    text = _scalar_text(value)
    if not text:
        raise _FieldError("is required")
    return _within(text, limit)


def _optional_text(value: Any, limit: int) -> str:
    return _within(_scalar_text(value) or "", limit)


def _within(text: str, limit: int) -> str:
    if len(text) > limit:
        raise _FieldError(f"is too long ({len(text)} characters; the limit is {limit})")
    return text


def _text_list(value: Any, limit: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _FieldError(f"must be a list, not {_kind_of(value)}")
    items = []
    for number, item in enumerate(value, 1):
        try:
            text = _scalar_text(item)
            if not text:
                raise _FieldError("is empty")
            items.append(_within(text, limit))
        except _FieldError as exc:
            raise _FieldError(f"item {number} {exc}") from None
    return tuple(items)


def _member(value: Any, enum_type: type[E], allowed: str) -> E:
    text = _scalar_text(value)
    if not text:
        raise _FieldError(f"is required (one of {allowed})")
    key = re.sub(r"[\s\-]+", "_", text.lower())
    try:
        return enum_type(key)
    except ValueError:
        raise _FieldError(f'must be {allowed} (got "{text}")') from None


def _tolerance(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _FieldError(f"must be a number (got {value})")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _FieldError(f'must be a number (got "{value}")') from None
    if not math.isfinite(number) or number < 0:
        raise _FieldError(f"must be a number, 0 or more (got {value})")
    return number


def _is_number(text: str) -> bool:
    """A decimal ("2.5", "-3", "1e3") or a fraction ("11/12")."""
    try:
        Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        return False
    return True


# --------------------------------------------------------------------------- export


def _export_fields(r: QuestionRecord, *, with_topic: bool) -> dict[str, Any]:
    """A question as the bundled files write it: empty optional fields left out."""
    fields: dict[str, Any] = {"topic": r.topic} if with_topic else {}
    fields |= {
        "prompt": r.prompt,
        "kind": r.kind.value,
        "difficulty": r.difficulty.value,
        "category": r.category,
    }
    if r.choices:
        fields["choices"] = list(r.choices)
    fields["answer"] = r.answer
    if r.accepted:
        fields["accepted"] = list(r.accepted)
    if r.tolerance is not None:
        fields["tolerance"] = r.tolerance
    if r.explanation:
        fields["explanation"] = r.explanation
    return fields


def _export_document(records: Sequence[QuestionRecord]) -> dict[str, Any]:
    topics = {r.topic for r in records}
    if len(topics) == 1:
        return {
            "topic": topics.pop(),
            "questions": [_export_fields(r, with_topic=False) for r in records],
        }
    return {"questions": [_export_fields(r, with_topic=True) for r in records]}


def _export_csv(records: Sequence[QuestionRecord]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.topic,
                r.category,
                r.difficulty.value,
                r.kind.value,
                r.prompt,
                _csv_list(r, r.choices),
                r.answer,
                _csv_list(r, r.accepted),
                "" if r.tolerance is None else repr(r.tolerance),
                r.explanation,
            ]
        )
    return buffer.getvalue().encode()


def _csv_list(r: QuestionRecord, items: tuple[str, ...]) -> str:
    for item in items:
        if CSV_SEPARATOR in item:
            raise InvalidInputError(
                f'{_where("question", r.prompt)}: "{item}" contains "{CSV_SEPARATOR}", which CSV '
                "uses to separate choices; export as quizbot-json or quizbot-yaml instead"
            )
    return CSV_SEPARATOR.join(items)
