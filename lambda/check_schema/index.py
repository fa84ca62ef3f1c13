"""Schema gate: do the raw CSV files have the declared columns, in order, with the declared types?

Lists every object under ``s3://<bucket>/<prefix>`` (the DataBrew dataset's S3 input) and,
for each CSV object (``*.csv``, the files the ETL reads; other objects are counted as skipped,
compressed CSV is not read), reads its header and a bounded sample of rows: one ranged GET of the
first ``SAMPLE_BYTES`` (1 MiB), with the partial last line dropped when the object is longer.
Rows beyond the sample are not read: a text value deeper in a large file passes here (the
DataBrew rules and the ETL still see the whole file).

Compared with the declared ``columns`` (``{name, type}`` each, in the raw files' order; the
``label`` is one of them, at any position):

- missing columns, extra columns (with their 1-based position), columns in the wrong order;
- mistyped columns, checked on the non-missing sampled values: ``numeric`` ones must parse as
  finite numbers, ``timestamp`` ones as ISO 8601 dates or date-times (``2024-05-01``,
  ``2024-05-01T10:00:00Z``, ``2024-05-01 10:00:00+02:00``), ``categorical`` and ``text`` ones take
  any value. The label is checked by its own rule instead of its type: with ``classes``
  (classification) each value must be one of them, as written or numerically equal (``1.0`` is
  class ``1``); without (regression) each value must be a number. The first offending value of a
  column is named with its row (the line number in the file, the header being line 1).

``NaN``, ``nan``, ``null``, ``NULL``, ``None`` and empty cells are missing values, never
mistyped: whether their share is acceptable is the data-quality rules' call. Every problem of
every file goes into one ``SchemaMismatch`` (the error name the state machine catches); files
whose headers differ are each named. No object under the prefix is an error too.
With ``extra_columns: ignore`` (the stage's ``data.extra_columns``) undeclared columns are no
problem wherever they sit; the declared ones must still all be there, in order, once each.
Returns ``{"files": N, "rows_sampled": N, "columns": N, "skipped": N}`` (and ``ignored``, the
undeclared column names, when they are ignored).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = Logger(service="check-schema")

SAMPLE_BYTES = 1024 * 1024
MISSING_TOKENS = frozenset({"", "NaN", "nan", "null", "NULL", "None"})
MAX_EXAMPLES = 5  # files named per distinct header before "and N more"


class SchemaMismatch(Exception):
    """The raw files do not match the declared schema; Step Functions sees the error name SchemaMismatch."""


class NoRawData(Exception):
    """Nothing under the raw prefix to check."""


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)  # as written in the raw header
    type: Literal["numeric", "categorical", "text", "timestamp"]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(min_length=1, max_length=1024)
    columns: list[Column] = Field(min_length=2)  # the raw files' declared column order
    label: str = Field(min_length=1)  # one of the columns, at any position
    classes: list[str] | None = None  # classification: the label's values; None: regression (a number)
    extra_columns: Literal["fail", "ignore"] = "fail"

    @model_validator(mode="after")
    def _consistent(self) -> "Event":
        problems = []
        names = [column.name for column in self.columns]
        twice = [name for position, name in enumerate(names) if name in names[:position]]
        problems += [f"columns: {name!r} is declared twice" for name in dict.fromkeys(twice)]
        if self.label not in names:
            problems.append(f"label: {self.label!r} is not a declared column; allowed: {', '.join(names)}")
        if self.classes is not None:
            if any(not value.strip() for value in self.classes):
                problems.append("classes: empty class value")
            elif len({value.strip() for value in self.classes}) < 2:
                problems.append(f"classes: at least 2 distinct values needed; got {', '.join(self.classes) or '(none)'}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


@lru_cache(maxsize=None)
def _client(service: str):  # created on first use, never at import time
    return boto3.client(service)


def parse_event(event: Any) -> Event:
    """The typed event, or ValueError naming each bad field."""
    if not isinstance(event, dict):
        raise ValueError(f"malformed check-schema event: expected a mapping with {', '.join(Event.model_fields)}; "
                         f"got {type(event).__name__}")
    try:
        return Event.model_validate(event)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            loc = item["loc"]
            if not loc and item["type"] == "value_error":  # the model validator's, fields named in the text
                problems.append(str(item["ctx"]["error"]))
                continue
            field = ".".join(str(part) for part in loc) or "(event)"
            message = "required but missing" if item["type"] == "missing" else item["msg"]
            if item["type"] == "extra_forbidden":
                model = Column if len(loc) == 3 and loc[0] == "columns" else Event
                message = f"unknown key; allowed: {', '.join(model.model_fields)}"
            problems.append(f"{field}: {message}")
        raise ValueError(f"malformed check-schema event: {'; '.join(problems)}") from None


def list_objects(bucket: str, prefix: str) -> list[str]:
    """The keys under ``prefix`` (folder markers left out)."""
    keys = []
    for page in _client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
    if not keys:
        raise NoRawData(f"no raw data under s3://{bucket}/{prefix}: upload the dataset's CSV files there")
    return keys


def read_sample(bucket: str, key: str) -> tuple[list[str], list[list[str]]]:
    """The header and the sampled rows of one CSV object (the first ``SAMPLE_BYTES``, the
    partial last line dropped when the object is longer)."""
    response = _client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SAMPLE_BYTES - 1}")
    body = response["Body"].read()
    # "bytes 0-1048575/<size>"; absent when the whole object came back
    size = str(response.get("ContentRange") or "").rpartition("/")[2]
    if size.isdigit() and int(size) > len(body):
        body = body[: body.rfind(b"\n") + 1]  # the last line is cut: drop it
    text = body.decode("utf-8-sig", errors="replace")
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        return [], []
    return rows[0], rows[1:]  # names as written: the ETL takes them literally too


def _is_missing(value: str) -> bool:
    return value.strip() in MISSING_TOKENS


def _number(value: str) -> float | None:
    """The value as a finite number, or None."""
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _is_number(value: str) -> bool:
    return _number(value) is not None


def _is_timestamp(value: str) -> bool:
    try:
        datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_class(value: str, classes: list[str]) -> bool:
    """One of the classes as written, or numerically equal to one (``1.0`` is class ``1``)."""
    value = value.strip()
    if value in {name.strip() for name in classes}:
        return True
    number = _number(value)
    return number is not None and any(_number(name) == number for name in classes)


def label_holding(classes: list[str] | None) -> str:
    return f"one of the classes {', '.join(dict.fromkeys(classes))}" if classes else "a number"


def header_problems(header: list[str], columns: list[str], *, ignore_extra: bool = False) -> list[str]:
    """Missing, extra and out-of-order columns of one header, compared with the declared ones
    (``ignore_extra``: undeclared columns are no problem, wherever they are)."""
    problems = []
    missing = [column for column in columns if column not in header]
    extra = [] if ignore_extra else [(position, name) for position, name in enumerate(header, start=1)
                                     if name not in columns]
    duplicated = sorted({name for name in header if header.count(name) > 1 and (name in columns or not ignore_extra)})
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if extra:
        problems.append("extra column" + ("s " if len(extra) > 1 else " ")
                        + ", ".join(f"{name or '(unnamed)'} (position {position})" for position, name in extra))
    if duplicated:
        problems.append(f"duplicated column{'s' if len(duplicated) > 1 else ''} {', '.join(duplicated)}")
    shared = [name for name in header if name in columns and name not in duplicated]
    expected = [name for name in columns if name in shared]
    if shared != expected:
        problems.append(f"columns in the wrong order: {', '.join(shared)} (declared: {', '.join(expected)})")
    return problems


def type_problems(header: list[str], rows: list[list[str]], columns: list[Column], label: str,
                  classes: list[str] | None = None) -> list[str]:
    """Declared columns whose sampled values do not fit their type (the label: its classes, or a
    number without them): the first example each."""
    problems = []
    for column in columns:
        if column.name not in header or header.count(column.name) > 1:
            continue
        if column.name == label:  # the label rule replaces its declared type
            kind = f"{label_holding(classes)} (the label)"
            fits = (lambda value: _is_class(value, classes)) if classes else _is_number
        elif column.type == "numeric":
            kind, fits = "a number", _is_number
        elif column.type == "timestamp":
            kind, fits = "an ISO 8601 timestamp", _is_timestamp
        else:  # categorical, text: any value
            continue
        index = header.index(column.name)
        for line, row in enumerate(rows, start=2):
            value = row[index] if index < len(row) else ""
            if not _is_missing(value) and not fits(value):
                problems.append(f"column {column.name} should hold {kind}: {value.strip()!r} on line {line}")
                break
    return problems


def check(bucket: str, prefix: str, columns: list[Column], label: str, classes: list[str] | None = None,
          extra_columns: str = "fail") -> dict[str, Any]:
    """Check every object under the prefix; raise SchemaMismatch with every problem found.
    ``extra_columns="ignore"``: undeclared columns are named in the result (``ignored``), not
    reported (the ETL keeps the declared columns only)."""
    names = [column.name for column in columns]
    listed = list_objects(bucket, prefix)
    keys = [key for key in listed if key.lower().endswith(".csv")]
    if not keys:
        raise NoRawData(f"no CSV file (*.csv) under s3://{bucket}/{prefix}; {len(listed)} other object(s): "
                        f"{', '.join(listed[:MAX_EXAMPLES])}")
    findings: list[str] = []
    headers: dict[tuple[str, ...], list[str]] = {}
    rows_sampled = 0
    for key in keys:
        header, rows = read_sample(bucket, key)
        rows_sampled += len(rows)
        headers.setdefault(tuple(header), []).append(key)
        where = f"s3://{bucket}/{key}"
        if not header:
            findings.append(f"{where}: empty file, no header")
            continue
        problems = (header_problems(header, names, ignore_extra=extra_columns == "ignore")
                    + type_problems(header, rows, columns, label, classes))
        findings += [f"{where}: {problem}" for problem in problems]
    if len(headers) > 1:
        groups = []
        for header, named in headers.items():
            more = f" and {len(named) - MAX_EXAMPLES} more" if len(named) > MAX_EXAMPLES else ""
            groups.append(f"{', '.join(named[:MAX_EXAMPLES])}{more} ({len(header)} columns: {', '.join(header) or '(none)'})")
        findings.insert(0, f"the files have {len(headers)} different headers: " + "; ".join(groups))
    if findings:
        raise SchemaMismatch(
            f"{len(findings)} schema problem{'s' if len(findings) > 1 else ''} in the raw data under s3://{bucket}/{prefix} "
            f"(declared: {len(names)} columns, label {label} holding {label_holding(classes)}):"
            + "".join(f"\n- {finding}" for finding in findings)
            + f"\ndeclared columns, in order: {', '.join(names)}"
        )
    ignored = sorted({name for header in headers for name in header if name not in names})
    return {"files": len(keys), "rows_sampled": rows_sampled, "columns": len(names), "skipped": len(listed) - len(keys),
            **({"ignored": ignored} if extra_columns == "ignore" else {})}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_event(event)
    try:
        result = check(parsed.bucket, parsed.prefix, parsed.columns, parsed.label, parsed.classes, parsed.extra_columns)
    except SchemaMismatch as mismatch:
        logger.warning(str(mismatch))
        raise
    logger.info(f"Schema matches: {result['files']} file(s), {result['rows_sampled']} sampled rows, "
                f"{result['columns']} columns under s3://{parsed.bucket}/{parsed.prefix}"
                + (f"; undeclared columns ignored: {', '.join(result['ignored'])}" if result.get("ignored") else ""))
    return result
