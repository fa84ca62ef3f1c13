#!/usr/bin/env python3
r"""Prepare the training data (AWS Glue 5.0 Spark job script): validate the cleaning rules,
dedupe, handle missing values and PII, and split 80/10/10 into train/validation/test.

Self-contained (pyspark only; ``awsglue`` when Glue runs it). Contract:

    --input                CSV with a header: one file, or a directory/prefix read recursively
                           (``*.csv`` only); a path or an s3:// URI
    --label                the label column
    --rules                JSON, from the stage config (default ``{}``):
                           {"missing": {"<column or *>": "drop" | "mean" | "median" | "mode"
                                                        | {"constant": <value>}},
                            "pii": {"<column>": "drop" | "mask"}}
    --seed                 integer (default 0)
    --schema               JSON (optional; default empty: absent):
                           {"features": ["<column>", ...],    the columns the model trains on
                            "classes": ["<value>", ...] | null}
    --output_train, --output_validation, --output_test
                           one CSV per split: label first, no header, what built-in XGBoost reads;
                           with --schema the label and then exactly ``features``, in that order
    --output_catalog       <output_catalog>/split=<name>/: the same rows with a header, so one
                           Glue crawler makes one table partitioned by ``split``; always the label
                           first, then every kept column in input order (with --schema too)
                           Every run overwrites all four output prefixes.

Cells holding ``NaN``, ``nan``, ``null``, ``NULL`` or ``None`` (surrounding blanks ignored) are
missing values, like empty cells: the same tokens the raw-schema check (``check_schema``
handler) counts as missing. They are nulled before the column types are inferred, so a
numeric column with such cells stays numeric. Exact duplicate rows and rows without a label are dropped, then rows with a null in a
column whose rule is ``drop``; the rest is split with exact counts (train round(0.8n),
validation round(0.1n), test the rest). Rows are ordered by a seeded hash of their content,
so the split does not depend on file order, row order or partitioning and is identical on
every rerun. Missing values are filled with statistics of the train split only (no leakage
from validation/test). A ``*`` rule covers the columns without their own rule and that it
fits (mean/median: numeric columns); the default is median for numeric columns, mode (most
frequent, smallest on ties) otherwise; integer columns stay integers (fills are rounded).
With ``--columns`` (comma-separated; the stage's ``data.extra_columns: ignore``) only those
columns are kept, in that order, before anything else; any other column of the input is dropped.

PII columns are dropped or replaced by the hex SHA-256 of their value (unsalted: it hides
values, it does not stop dictionary look-ups). A masked column is a string, which built-in
XGBoost cannot read: drop PII that is not needed for joins, or leave it out of ``features``.

``--schema`` (a dict when ``run`` is called directly) picks the training matrix: ``features``
(non-empty, distinct, columns of the data, neither the label nor a dropped PII column) are
the columns after the label in the three training splits; any other column (an id, masked
PII) stays in the catalog copy only. Feature columns pass through as they are after the
missing-value fills: a text column stays text (no encoding here). With ``classes`` (at least
2 distinct values) the label becomes the index of its value in that list (0..k-1), in the
splits and in the catalog copy alike; without them the label is written unchanged. A label
matches a class numerically when the label column is numeric and every class is a number
(``1.0`` matches ``"1"``), else by its string form with surrounding blanks ignored. A label
value matching no class fails the job before anything is written, naming the smallest such
value and how many kept rows (after dedupe and drops) hold one. Errors in ``--schema`` name
the field (``schema.features: ...``) and are raised before any Spark job runs. Cleaning and
splitting never look at ``--schema``: the same input gives the same rows in each split, in
the same order, with or without it.

Locally (no awsglue: argparse and a local SparkSession instead of GlueContext):

    python jobs/etl/etl.py --input data/sample/breast_cancer --label target \
        --output_train /tmp/etl/train/ --output_validation /tmp/etl/validation/ \
        --output_test /tmp/etl/test/ --output_catalog /tmp/etl/catalog/
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DataType, IntegralType, NumericType, StringType, StructType

LOGGER = logging.getLogger("etl")

SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
MISSING_STRATEGIES = ("drop", "mean", "median", "mode", "constant")
PII_ACTIONS = ("drop", "mask")
RULE_SECTIONS = ("missing", "pii")
SCHEMA_KEYS = ("features", "classes")
ROW_NUMBER = "__etl_row_number"  # internal; never written
MISSING_TOKENS = ("NaN", "nan", "null", "NULL", "None")  # and empty cells, Spark's own null
CATALOG_PARTITION = "split"  # the catalog copy's partition column


@dataclass(frozen=True)
class Fill:
    """What to do with a column's missing values: a strategy, and the value for ``constant``."""

    strategy: str
    constant: Any = None


@dataclass(frozen=True)
class Plan:
    """Validated rules resolved against the data: a Fill for every output feature column."""

    missing: dict[str, Fill]
    pii: dict[str, str]


@dataclass(frozen=True)
class Schema:
    """A parsed ``--schema``: the training columns and the label's classes (None: unchanged)."""

    features: tuple[str, ...]
    classes: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Prepared:
    """``transform``'s splits plus what ``run`` reports; the DataFrames are lazy."""

    splits: dict[str, DataFrame]  # the training matrices: the label, then the features
    catalog: dict[str, DataFrame]  # the same rows with every kept column (the catalog copy)
    plan: Plan
    schema: Schema | None
    distinct: DataFrame  # the input without duplicate rows
    numbered: DataFrame  # the rows kept, numbered in split order (persisted when asked)
    rows: dict[str, int]  # per split, exact by construction
    null_counts: dict[str, int]  # nulls filled, per column, across the three splits
    fill_values: dict[str, Any]  # column -> value, computed on the train split


def transform(
    df: DataFrame, *, label: str, rules: dict[str, Any], seed: int = 0, schema: Schema | dict | str | None = None
) -> dict[str, DataFrame]:
    """Pure transform: clean ``df`` and split it into {"train", "validation", "test"}.

    Raises ValueError naming the offending field (``rules.missing.<column>``,
    ``schema.features``, ...) for bad rules or schema before any Spark job runs. The label
    becomes the first column; with ``schema`` only its features follow.
    """
    return prepare(df, label=label, rules=rules, seed=seed, schema=schema).splits


def prepare(
    df: DataFrame,
    *,
    label: str,
    rules: dict[str, Any],
    seed: int = 0,
    persist: bool = False,
    schema: Schema | dict | str | None = None,
) -> Prepared:
    """``transform`` with the catalog copy and the counts ``run`` reports; ``persist`` caches
    the numbered rows, which every split, statistic and write reads (the caller unpersists)."""
    plan = validate_rules(rules, df.schema, label)
    spec = parse_schema(schema)
    if spec is not None:
        validate_schema(spec, df.schema, label, plan)
    columns = df.columns
    types = {field.name: field.dataType for field in df.schema.fields}
    # The label's class index (None: unchanged); applied on output only, never to the rows
    # that are deduped, hashed and split.
    index = _label_index(_col(label), types[label], spec.classes) if spec and spec.classes else None

    distinct = df.dropDuplicates()
    kept = distinct.where(_col(label).isNotNull())
    for column, fill in plan.missing.items():
        if fill.strategy == "drop":
            kept = kept.where(_col(column).isNotNull())

    to_fill = [column for column, fill in plan.missing.items() if fill.strategy != "drop"]
    checks = []
    if index is not None:  # labels outside the classes, counted in the same Spark job
        unmatched = index.isNull()
        checks = [F.count_if(unmatched), F.min(F.when(unmatched, _col(label)))]
    counts = kept.agg(
        F.count(F.lit(1)), *(F.count_if(_col(column).isNull()) for column in to_fill), *checks
    ).first()
    n = counts[0]
    null_counts = {column: count for column, count in zip(to_fill, counts[1 : 1 + len(to_fill)]) if count}
    if checks and counts[-2]:
        raise ValueError(
            f"label: value {counts[-1]!r} ({counts[-2]} rows) is not one of the classes "
            f"{', '.join(_class_text(value) for value in spec.classes)}"
        )

    # Order by a seeded hash of the whole row, then by every column: rows are distinct, so
    # the order is total and depends on content only, never on input order or partitioning.
    # A window without partitionBy sorts everything in one task: fine for tabular training
    # data (millions of rows; it spills to disk), a bottleneck beyond that. To scale further,
    # bucket on the hash's top bits, number rows per bucket and add per-bucket offsets.
    order = [F.xxhash64(F.lit(seed), *(_col(c) for c in columns)), *(_col(c).asc_nulls_first() for c in columns)]
    numbered = kept.withColumn(ROW_NUMBER, F.row_number().over(Window.orderBy(*order)))
    if persist:
        numbered = numbered.persist()

    n_train = round(n * SPLITS[0][1])
    n_validation = round(n * SPLITS[1][1])
    bounds = {
        "train": (0, n_train),
        "validation": (n_train, n_train + n_validation),
        "test": (n_train + n_validation, n),
    }
    parts = {
        name: numbered.where((F.col(ROW_NUMBER) > start) & (F.col(ROW_NUMBER) <= end))
        for name, (start, end) in bounds.items()
    }

    fill_values = _fill_values(parts["train"], {column: plan.missing[column] for column in null_counts}, types)
    output = [label, *(column for column in columns if column != label and plan.pii.get(column) != "drop")]

    def finish(part: DataFrame) -> DataFrame:
        selected = [(index if index is not None else _col(label)).alias(label)]
        for column in output[1:]:
            expression = _col(column)
            if column in fill_values:
                expression = F.coalesce(expression, F.lit(fill_values[column]).cast(types[column]))
            if plan.pii.get(column) == "mask":
                expression = F.sha2(expression.cast("string"), 256)
            selected.append(expression.alias(column))
        return part.select(*selected)

    catalog = {name: finish(part) for name, part in parts.items()}
    training = [label, *spec.features] if spec else output
    return Prepared(
        splits={name: part.select(*(_col(column) for column in training)) for name, part in catalog.items()},
        catalog=catalog,
        plan=plan,
        schema=spec,
        distinct=distinct,
        numbered=numbered,
        rows={name: end - start for name, (start, end) in bounds.items()},
        null_counts=null_counts,
        fill_values=fill_values,
    )


def validate_rules(rules: Any, schema: StructType, label: str) -> Plan:
    """Check ``rules`` against the data's columns and resolve ``*`` and the defaults.

    Every error names the field to fix, e.g. ``rules.missing.mean_radius: ...``.
    """
    columns = [field.name for field in schema.fields]
    types = {field.name: field.dataType for field in schema.fields}
    listing = f"(columns: {', '.join(columns)})"
    if label not in types:
        raise ValueError(f"label: column {label!r} not in the data {listing}")
    for reserved in (ROW_NUMBER, CATALOG_PARTITION):
        if reserved in types:
            raise ValueError(f"columns: {reserved!r} is reserved by the ETL job; rename that column")
    if not isinstance(rules, dict):
        raise ValueError(f"rules: expected an object with {' and/or '.join(RULE_SECTIONS)}, got {type(rules).__name__}")
    for section in rules:
        if section not in RULE_SECTIONS:
            raise ValueError(f"rules.{section}: unknown section; allowed: {', '.join(RULE_SECTIONS)}")
    missing, pii = rules.get("missing", {}), rules.get("pii", {})
    for section, value in (("missing", missing), ("pii", pii)):
        if not isinstance(value, dict):
            raise ValueError(f"rules.{section}: expected an object mapping column names, got {type(value).__name__}")

    for column, action in pii.items():
        field = f"rules.pii.{column}"
        if column not in types:
            raise ValueError(f"{field}: column not in the data {listing}")
        if column == label:
            raise ValueError(f"{field}: the label cannot be dropped or masked")
        if action not in PII_ACTIONS:
            raise ValueError(f"{field}: unknown action {action!r}; allowed: {', '.join(PII_ACTIONS)}")

    explicit = {}
    for column, rule in missing.items():
        field = f"rules.missing.{column}"
        if column != "*" and column not in types:
            raise ValueError(f"{field}: column not in the data {listing}")
        fill = _parse_fill(field, rule)
        if column == label:
            if fill.strategy != "drop":
                raise ValueError(f"{field}: rows without a label are always dropped; only 'drop' is allowed")
            continue
        if column != "*":
            problem = _misfit(fill, types[column])
            if problem:
                raise ValueError(f"{field}: {problem}")
            explicit[column] = fill
    default = _parse_fill("rules.missing.*", missing["*"]) if "*" in missing else None

    plan = {}
    for column in columns:
        if column == label:
            continue
        if column in explicit:
            fill = explicit[column]
        elif default is not None and not _misfit(default, types[column]):
            fill = default
        else:
            fill = Fill("median" if _numeric(types[column]) else "mode")
        # A dropped PII column is never written: only an explicit row-drop rule still matters.
        if pii.get(column) == "drop" and not (column in explicit and fill.strategy == "drop"):
            continue
        plan[column] = fill
    return Plan(missing=plan, pii=dict(pii))


def parse_schema(value: Schema | dict | str | None) -> Schema | None:
    """``--schema`` as given (JSON text, a dict, or empty/None for absent), checked for shape
    only: the columns are checked against the data by ``validate_schema``."""
    if isinstance(value, Schema) or value is None:
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"schema: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"schema: expected an object with {' and '.join(SCHEMA_KEYS)}, got {type(value).__name__}")
    for key in value:
        if key not in SCHEMA_KEYS:
            raise ValueError(f"schema: unknown key {key!r}; allowed: {', '.join(SCHEMA_KEYS)}")
    features = value.get("features")
    if not (isinstance(features, list) and features and all(isinstance(f, str) and f for f in features)):
        raise ValueError("schema.features: expected a non-empty list of column names")
    seen = set()
    for feature in features:
        if feature in seen:
            raise ValueError(f"schema.features: {feature!r} listed twice")
        seen.add(feature)
    classes = value.get("classes")
    if classes is not None:
        valid = (
            isinstance(classes, list)
            and len(classes) >= 2
            and all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes)
            and len({_class_text(c) for c in classes}) == len(classes)
        )
        if not valid:
            raise ValueError("schema.classes: expected a list of at least 2 distinct values")
        classes = tuple(classes)
    return Schema(features=tuple(features), classes=classes)


def validate_schema(schema: Schema, data: StructType, label: str, plan: Plan) -> None:
    """Check ``schema.features`` against the data's columns, the label and the PII rules."""
    columns = [field.name for field in data.fields]
    for feature in schema.features:
        if feature not in columns:
            raise ValueError(f"schema.features: column {feature!r} not in the data (columns: {', '.join(columns)})")
        if feature == label:
            raise ValueError(f"schema.features: {feature!r} is the label")
        if plan.pii.get(feature) == "drop":
            raise ValueError(f"schema.features: {feature!r} is a dropped PII column (rules.pii)")


def _class_text(value: Any) -> str:
    """A class's string form, compared with the label's trimmed string form (Spark's trim: spaces)."""
    return value.strip(" ") if isinstance(value, str) else str(value)


def _class_number(value: Any) -> int | float | None:
    """A class as a number (an int when whole), None when it is not one."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() else number


def _label_index(label: Column, data_type: DataType, classes: tuple[Any, ...]) -> Column:
    """The label's index in ``classes`` (null when it matches none): numeric comparison for a
    numeric label column when every class is a number, else the trimmed string forms."""
    numbers = [_class_number(value) for value in classes]
    if _numeric(data_type) and all(number is not None for number in numbers):
        if len(set(numbers)) != len(numbers):  # "1" and "1.0" are one class here
            raise ValueError("schema.classes: expected a list of at least 2 distinct values")
        conditions = [label == F.lit(number) for number in numbers]
    else:
        text = F.trim(label.cast("string"))
        conditions = [text == F.lit(_class_text(value)) for value in classes]
    expression = F.when(conditions[0], F.lit(0))
    for position, condition in enumerate(conditions[1:], start=1):
        expression = expression.when(condition, F.lit(position))
    return expression


def _parse_fill(field: str, rule: Any) -> Fill:
    allowed = f"allowed: {', '.join(MISSING_STRATEGIES)}"
    if isinstance(rule, dict):
        if set(rule) != {"constant"}:
            raise ValueError(f"{field}: unknown strategy {rule!r}; {allowed} (as {{\"constant\": <value>}})")
        if rule["constant"] is None:
            raise ValueError(f"{field}.constant: must not be null")
        return Fill("constant", rule["constant"])
    if rule not in MISSING_STRATEGIES or rule == "constant":
        raise ValueError(f"{field}: unknown strategy {rule!r}; {allowed}")
    return Fill(rule)


def _misfit(fill: Fill, data_type: DataType) -> str | None:
    """Why ``fill`` cannot apply to a column of ``data_type`` (None when it can)."""
    if fill.strategy in ("mean", "median") and not _numeric(data_type):
        return f"{fill.strategy!r} needs a numeric column, not {data_type.simpleString()}"
    if fill.strategy == "constant":
        value = fill.constant
        fits = (
            (_numeric(data_type) and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (isinstance(data_type, StringType) and isinstance(value, str))
            or (isinstance(data_type, BooleanType) and isinstance(value, bool))
        )
        if not fits:
            return f"constant {value!r} does not fit a {data_type.simpleString()} column"
    return None


def _numeric(data_type: DataType) -> bool:
    return isinstance(data_type, NumericType)


def _fill_values(train: DataFrame, fills: dict[str, Fill], types: dict[str, DataType]) -> dict[str, Any]:
    """The value each column's nulls become, from the train split only."""
    values = {column: fill.constant for column, fill in fills.items() if fill.strategy == "constant"}
    # Exact median, like pandas; F.percentile_approx is the swap for tables too big to
    # hold one column's train values on one executor.
    aggregates = {"mean": F.mean, "median": F.median}
    stats = [column for column, fill in fills.items() if fill.strategy in aggregates]
    if stats:
        row = train.agg(*(aggregates[fills[column].strategy](_col(column)) for column in stats)).first()
        values.update(zip(stats, row))
    for column, fill in fills.items():
        if fill.strategy == "mode":
            # Most frequent value; the smallest on ties, so reruns agree (F.mode does not promise that).
            top = (
                train.where(_col(column).isNotNull())
                .groupBy(_col(column).alias("value"))
                .count()
                .orderBy(F.desc("count"), F.asc("value"))
                .first()
            )
            values[column] = None if top is None else top["value"]
    for column, value in values.items():
        if value is None:
            raise ValueError(
                f"column {column!r}: the train split has no value to compute the {fills[column].strategy} from; "
                f"set rules.missing.{column} to a constant or 'drop'"
            )
    # Integer columns keep their type, so fills are rounded (a cast would truncate 2.7 to 2).
    return {
        column: round(value) if isinstance(types[column], IntegralType) and isinstance(value, float) else value
        for column, value in values.items()
    }


def _col(name: str) -> Column:
    """A column by its literal name (CSV headers may hold dots or spaces)."""
    return F.col("`" + name.replace("`", "``") + "`")


def run(spark: SparkSession, args: dict[str, Any]) -> dict[str, Any]:
    """Read ``args["input"]``, transform, write the training layout and the catalog copy.

    ``args`` holds the job arguments by name (``rules`` a dict or JSON string, ``seed`` an
    int or string, as Glue passes strings). Returns the summary, also logged as JSON.
    """
    rules = args.get("rules") or {}
    if isinstance(rules, str):
        try:
            rules = json.loads(rules)
        except json.JSONDecodeError as error:
            raise ValueError(f"rules: not valid JSON ({error})") from None
    try:
        seed = int(args.get("seed") or 0)
    except ValueError:
        raise ValueError(f"seed: expected an integer, got {args['seed']!r}") from None
    label = args["label"]
    schema = parse_schema(args.get("schema"))  # its shape is checked before anything is read

    raw = read_csv(spark, args["input"])
    if args.get("columns"):  # data.extra_columns: ignore — keep the declared columns, drop any other
        declared = [name for name in str(args["columns"]).split(",") if name]
        missing = [name for name in declared if name not in raw.columns]
        if missing:
            raise ValueError(f"columns: {', '.join(missing)} not in the input (it has {', '.join(raw.columns)})")
        raw = raw.select(*(_col(name) for name in declared))
    raw = raw.cache()  # read once: the counts below and the split all start here
    prepared = None
    try:  # a session may serve several runs (the offline runner's does): never leave data cached
        prepared = prepare(raw, label=label, rules=rules, seed=seed, persist=True, schema=schema)
        input_rows = raw.count()
        distinct_rows, unlabelled_rows = (
            prepared.distinct.agg(F.count(F.lit(1)), F.count_if(_col(label).isNull())).first()
        )
        for name, part in prepared.splits.items():
            # Built-in XGBoost reads every object under the channel's prefix: one file, no
            # header, no empty _SUCCESS marker.
            _write_csv(part.coalesce(1), args[f"output_{name}"], header=False)
        # One write for the catalog copy, so its three partitions are replaced together.
        tagged = (part.withColumn(CATALOG_PARTITION, F.lit(name)) for name, part in prepared.catalog.items())
        catalog = reduce(DataFrame.unionByName, tagged)
        _write_csv(catalog, args["output_catalog"], header=True, partition_by=CATALOG_PARTITION)
    finally:
        if prepared is not None:
            prepared.numbered.unpersist()
        raw.unpersist()

    plan = prepared.plan
    summary = {
        "input_rows": input_rows,
        "duplicates_dropped": input_rows - distinct_rows,
        "missing_label_dropped": unlabelled_rows,
        "missing_values_dropped": distinct_rows - unlabelled_rows - sum(prepared.rows.values()),
        "rows": prepared.rows,
        "filled": {
            column: {
                "strategy": plan.missing[column].strategy,
                # the fill value of a masked column is PII: keep it out of the logs
                "value": "<masked>" if plan.pii.get(column) == "mask" else prepared.fill_values[column],
                "count": count,
            }
            for column, count in prepared.null_counts.items()
        },
        "pii": plan.pii,
        "columns": prepared.splits["train"].columns,
        "seed": seed,
    }
    if schema is not None:
        summary["features"] = list(schema.features)
        summary["classes"] = None if schema.classes is None else list(schema.classes)
    LOGGER.info("etl summary %s", json.dumps(summary, default=str))
    return summary


def read_csv(spark: SparkSession, path: str) -> DataFrame:
    """The CSV files under ``path`` with ``MISSING_TOKENS`` as nulls and Spark's inferred types.

    Spark's reader takes one null token (``nullValue``, empty by default) and reads ``NaN`` as a
    double NaN, not a null: the cells are read as text, the tokens nulled, and the cleaned rows
    parsed again with schema inference, so the types are those Spark infers without the tokens."""
    text = (
        spark.read.option("header", True)
        .option("recursiveFileLookup", True)  # a prefix may hold sub-folders; no partition columns
        .option("pathGlobFilter", "*.csv")
        .csv(path)
    )
    cleaned = [F.when(F.trim(_col(c)).isin(*MISSING_TOKENS), F.lit(None)).otherwise(_col(c)) for c in text.columns]
    lines = text.select(F.to_csv(F.struct(*cleaned))).rdd.map(lambda row: row[0])
    return spark.read.option("inferSchema", True).csv(lines).toDF(*text.columns)


def _write_csv(df: DataFrame, path: str, *, header: bool, partition_by: str | None = None) -> None:
    writer = df.write.partitionBy(partition_by) if partition_by else df.write
    (
        writer.mode("overwrite")
        .option("header", header)
        .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .csv(path)
    )


ARGUMENTS = ("input", "output_train", "output_validation", "output_test", "output_catalog", "label")
# columns: the declared ones, where others are ignored; schema: the features and classes ("" = absent)
OPTIONAL_ARGUMENTS = {"rules": "{}", "seed": "0", "columns": "", "schema": ""}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Glue entry point; without ``awsglue`` (local runs) argparse and a local SparkSession."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    LOGGER.setLevel(logging.INFO)  # this job's summary; py4j's INFO chatter stays below the root's WARNING
    argv = sys.argv[1:] if argv is None else argv
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from awsglue.utils import getResolvedOptions
    except ImportError:
        return run(_local_spark(), _local_args(argv))

    # getResolvedOptions makes every name it is given required: ask only for the optional
    # ones present. Glue always passes JOB_NAME.
    present = [name for name in ("JOB_NAME", *OPTIONAL_ARGUMENTS) if _given(argv, name)]
    args = {**OPTIONAL_ARGUMENTS, **getResolvedOptions([sys.argv[0], *argv], [*ARGUMENTS, *present])}
    from pyspark.context import SparkContext

    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args.get("JOB_NAME", "etl"), args)
    summary = run(glue_context.spark_session, args)
    job.commit()
    return summary


def _given(argv: list[str], name: str) -> bool:
    return any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in argv)


def _local_args(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ARGUMENTS:
        parser.add_argument(f"--{name}", required=True)
    for name, default in OPTIONAL_ARGUMENTS.items():
        parser.add_argument(f"--{name}", default=default)
    return vars(parser.parse_args(argv))


def _local_spark() -> SparkSession:
    return (
        SparkSession.builder.master("local[*]")
        .appName("etl")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


if __name__ == "__main__":
    main()
