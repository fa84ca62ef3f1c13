"""The Glue ETL job (jobs/etl/etl.py) on a local Spark: the bundled sample with injected
problems (duplicate rows, missing features, a missing label, PII columns) must come out
clean, split with exact counts, deterministically and without leakage from validation/test.

Spark costs about a second per query here, so one transform of the dirty data is collected
once (the ``splits`` fixture) and most tests only read it."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import random
import re
import statistics
import sys
import types
from functools import reduce
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from jobs.etl import etl
from jobs.etl.etl import prepare, read_csv, run, transform
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "data" / "sample" / "breast_cancer" / "breast_cancer.csv"
LABEL = "target"
SPLITS = ("train", "validation", "test")
SAMPLE_ROWS = 569

# Columns added to the sample: an integer, a text column, two PII columns.
EXTRA = {"visits": IntegerType(), "site": StringType(), "email": StringType(), "phone": StringType()}
SITES = ("north", "south", "east", "north", "west")
# Injected problems (indices into the sample rows):
NULL_RADIUS = range(0, SAMPLE_ROWS, 25)  # 23 rows: train median, from the "*" rule
NULL_TEXTURE = range(5, SAMPLE_ROWS, 20)  # 29 rows: train mean
NULL_AREA = (100, 200)  # a constant
NULL_VISITS = range(11, SAMPLE_ROWS, 70)  # 8 rows: train median, rounded (integer column)
NULL_SITE = range(9, SAMPLE_ROWS, 60)  # 10 rows: "*" (median) does not fit text: the default, train mode
NULL_SMOOTHNESS = (3, 7)  # rule "drop": these rows go
NULL_PHONE = (30,)  # a dropped PII column: neither filled nor a reason to drop the row
DUPLICATED = (1, 2, 3, 4, 5)  # exact copies appended, nulls included
RULES = {
    "missing": {
        "*": "median",
        "mean_texture": "mean",
        "worst_area": {"constant": 0.0},
        "mean_smoothness": "drop",
    },
    "pii": {"email": "mask", "phone": "drop"},
}
# 569 + 5 duplicates + 1 unlabelled = 575 rows in; 567 left after the drops.
EXPECTED_ROWS = {"train": 454, "validation": 57, "test": 56}  # round(0.8 * 567), round(0.1 * 567), the rest
EXPECTED_FILLED = {"mean_radius": 23, "mean_texture": 29, "worst_area": 2, "visits": 8, "site": 10}


@pytest.fixture(scope="module")
def spark():
    """The offline runner's local Spark session (one per process, never stopped): a worker that
    also runs offline data phases starts one JVM, not two (tools/offline/jobs.py configures it:
    local[1], one shuffle partition, C1 JIT and the serial GC for a short-lived JVM)."""
    from tools.offline.jobs import _spark

    return _spark()


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture(scope="module")
def dirty() -> tuple[list[str], list[list]]:
    """The sample with the extra columns and every injected problem, as plain rows."""
    with SAMPLE.open(newline="") as handle:
        reader = csv.reader(handle)
        sample_header = next(reader)
        sample = [[int(v) if name == LABEL else float(v) for name, v in zip(sample_header, row)] for row in reader]
    assert len(sample) == SAMPLE_ROWS
    header = [*sample_header, *EXTRA]
    rows = [
        [*row, (i * 7) % 13, SITES[i % len(SITES)], f"patient{i:03d}@example.com", f"+44 20 7946 {i:04d}"]
        for i, row in enumerate(sample)
    ]
    for indices, column in (
        (NULL_RADIUS, "mean_radius"),
        (NULL_TEXTURE, "mean_texture"),
        (NULL_AREA, "worst_area"),
        (NULL_VISITS, "visits"),
        (NULL_SITE, "site"),
        (NULL_SMOOTHNESS, "mean_smoothness"),
        (NULL_PHONE, "phone"),
    ):
        for index in indices:
            rows[index][header.index(column)] = None
    unlabelled = list(rows[20])
    unlabelled[header.index(LABEL)] = None
    unlabelled[header.index("email")] = "nolabel@example.com"
    return header, [*rows, *(list(rows[index]) for index in DUPLICATED), unlabelled]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    return path


def _read(spark: SparkSession, path: Path, header: list[str]) -> DataFrame:
    """The CSV with the schema run() infers (parsed in the JVM: faster than createDataFrame)."""
    types = {LABEL: IntegerType(), **EXTRA}
    schema = StructType([StructField(name, types.get(name, DoubleType())) for name in header])
    return spark.read.csv(str(path), header=True, schema=schema)


def _collect(parts: dict[str, DataFrame]) -> dict[str, list[dict]]:
    """All three splits in one Spark query, rows in split order."""
    tagged = reduce(DataFrame.unionByName, (part.withColumn("_split", F.lit(name)) for name, part in parts.items()))
    collected: dict[str, list[dict]] = {name: [] for name in parts}
    for row in tagged.collect():
        values = row.asDict()
        collected[values.pop("_split")].append(values)
    return collected


@pytest.fixture(scope="module")
def dirty_df(spark, dirty, tmp_path_factory) -> DataFrame:
    return _read(spark, _write_csv(tmp_path_factory.mktemp("dirty") / "dirty.csv", *dirty), dirty[0])


@pytest.fixture(scope="module")
def splits(dirty_df) -> dict[str, list[dict]]:
    return _collect(transform(dirty_df, label=LABEL, rules=RULES, seed=0))


@pytest.fixture(scope="module")
def origin(dirty) -> dict[str, int]:
    """Masked email -> index of the sample row it came from (emails are unique per row)."""
    header, rows = dirty
    return {_sha(row[header.index("email")]): index for index, row in enumerate(rows[:SAMPLE_ROWS])}


def test_counts_are_exact(splits) -> None:
    assert {name: len(rows) for name, rows in splits.items()} == EXPECTED_ROWS


def test_no_row_in_two_splits_and_no_duplicates_left(splits, origin) -> None:
    indices = [origin[row["email"]] for rows in splits.values() for row in rows]
    assert len(indices) == len(set(indices))
    assert set(indices) == set(range(SAMPLE_ROWS)) - set(NULL_SMOOTHNESS)


def test_no_nulls_left(splits) -> None:
    nulls = [(name, key) for name, rows in splits.items() for row in rows
             for key, value in row.items() if value is None]
    assert nulls == []


def test_label_first_and_pii_dropped_or_masked(splits, dirty, origin) -> None:
    header, _ = dirty
    assert list(splits["train"][0]) == [LABEL, *(name for name in header if name not in (LABEL, "phone"))]
    # every email is the hex SHA-256 of a real input email, never the email itself
    emails = [row["email"] for rows in splits.values() for row in rows]
    assert all(re.fullmatch(r"[0-9a-f]{64}", email) and email in origin for email in emails)


def test_same_split_on_a_rerun_with_shuffled_rows_and_other_partitioning(spark, dirty, splits, tmp_path) -> None:
    header, rows = dirty
    shuffled = random.Random(7).sample(rows, len(rows))
    reordered = _read(spark, _write_csv(tmp_path / "shuffled.csv", header, shuffled), header).repartition(5)
    assert reordered.rdd.getNumPartitions() == 5
    assert _collect(transform(reordered, label=LABEL, rules=RULES, seed=0)) == splits  # same rows, same order


def test_seed_changes_the_split(dirty_df, splits) -> None:
    other = transform(dirty_df, label=LABEL, rules=RULES, seed=1)
    assert {row["email"] for row in other["test"].collect()} != {row["email"] for row in splits["test"]}


def test_fill_values_come_from_train_only(splits, dirty, origin) -> None:
    header, rows = dirty
    train = {origin[row["email"]] for row in splits["train"]}
    kept = set(range(SAMPLE_ROWS)) - set(NULL_SMOOTHNESS)
    by_origin = {origin[row["email"]]: row for part in splits.values() for row in part}

    def observed(column: str, among: set[int]) -> list:
        return [rows[i][header.index(column)] for i in sorted(among) if rows[i][header.index(column)] is not None]

    def filled(column: str, nulls) -> set:
        return {by_origin[i][column] for i in nulls}

    for column, nulls, statistic in (
        ("mean_radius", NULL_RADIUS, statistics.median),
        ("mean_texture", NULL_TEXTURE, statistics.mean),
    ):
        from_train, from_all = statistic(observed(column, train)), statistic(observed(column, kept))
        assert from_train != pytest.approx(from_all)  # the case tells a leak apart
        (value,) = filled(column, nulls)
        assert value == pytest.approx(from_train), column
        # some of those nulls sit in validation/test rows: filled with train's statistic too
        assert any(i not in train for i in nulls)
    assert filled("visits", NULL_VISITS) == {round(statistics.median(observed("visits", train)))}
    assert all(type(row["visits"]) is int for row in by_origin.values())  # integer columns stay integers
    sites = observed("site", train)
    assert filled("site", NULL_SITE) == {min(set(sites), key=lambda site: (-sites.count(site), site))}
    assert filled("worst_area", NULL_AREA) == {0.0}
    assert by_origin[NULL_PHONE[0]][LABEL] is not None  # a null in a dropped PII column keeps the row


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"missing": {"mean_radius": "avg"}},
            "rules.missing.mean_radius: unknown strategy 'avg'; allowed: drop, mean, median, mode, constant",
        ),
        ({"missing": {"nope": "mean"}}, "rules.missing.nope: column not in the data (columns: mean_radius, "),
        ({"pii": {"ssn": "mask"}}, "rules.pii.ssn: column not in the data (columns: "),
        ({"pii": {"email": "hash"}}, "rules.pii.email: unknown action 'hash'; allowed: drop, mask"),
        ({"pii": {"target": "drop"}}, "rules.pii.target: the label cannot be dropped or masked"),
        ({"missing": {"site": "median"}}, "rules.missing.site: 'median' needs a numeric column, not string"),
        (
            {"missing": {"mean_area": {"constant": "zero"}}},
            "rules.missing.mean_area: constant 'zero' does not fit a double column",
        ),
        ({"missing": {"mean_area": {"value": 0}}}, "rules.missing.mean_area: unknown strategy {'value': 0}"),
        ({"missing": {"*": {"constant": None}}}, "rules.missing.*.constant: must not be null"),
        ({"missing": {"target": "mode"}}, "rules.missing.target: rows without a label are always dropped"),
        ({"missing": ["mean"]}, "rules.missing: expected an object"),
        ({"imputation": {}}, "rules.imputation: unknown section; allowed: missing, pii"),
    ],
)
def test_bad_rules_raise_naming_the_field(dirty_df, rules, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        transform(dirty_df, label=LABEL, rules=rules)


def test_unknown_label_is_named(dirty_df) -> None:
    with pytest.raises(ValueError, match=re.escape("label: column 'diagnosis' not in the data")):
        transform(dirty_df, label="diagnosis", rules={})


def _only_file(directory: Path) -> Path:
    files = [path for path in directory.iterdir() if not path.name.startswith(".")]  # .crc: local file system only
    assert len(files) == 1, files  # one CSV, no _SUCCESS marker
    return files[0]


def test_declared_columns_keep_only_those(spark, tmp_path) -> None:
    """``--columns`` (data.extra_columns: ignore): undeclared input columns never reach the splits."""
    raw = tmp_path / "raw"
    header = ["a", "lot_id", "b", "target", "notes"]
    _write_csv(raw / "part.csv", header, [[i, f"lot-{i}", i * 2, i % 2, "x"] for i in range(40)])
    out = tmp_path / "curated"
    args = {"input": str(raw), **{f"output_{name}": f"{out}/{name}/" for name in SPLITS},
            "output_catalog": f"{out}/catalog/", "label": "target", "columns": "a,b,target"}
    summary = run(spark, args)
    assert summary["columns"] == ["target", "a", "b"]
    assert all(len(line.split(",")) == 3 for name in SPLITS for line in _only_file(out / name).read_text().splitlines())
    with pytest.raises(ValueError, match="columns: c not in the input"):
        run(spark, {**args, "columns": "a,c,target"})


def test_run_end_to_end(spark, dirty, tmp_path, caplog) -> None:
    header, rows = dirty
    raw = tmp_path / "raw"  # two CSV files, one in a sub-folder, and a file that is not CSV
    _write_csv(raw / "part-a.csv", header, rows[:300])
    _write_csv(raw / "2024" / "01" / "part-b.csv", header, rows[300:])
    (raw / "README.md").write_text("not data\n")
    out = tmp_path / "curated"
    args = {
        "input": str(raw),
        **{f"output_{name}": f"{out}/{name}/" for name in SPLITS},
        "output_catalog": f"{out}/catalog/",
        "label": LABEL,
        "rules": json.dumps(RULES),  # strings, as Glue passes them
        "seed": "0",
    }
    with caplog.at_level(logging.INFO, logger="etl"):
        summary = run(spark, args)

    columns = [LABEL, *(name for name in header if name not in (LABEL, "phone"))]
    assert summary["rows"] == EXPECTED_ROWS
    assert (summary["input_rows"], summary["duplicates_dropped"]) == (575, 5)
    assert (summary["missing_label_dropped"], summary["missing_values_dropped"]) == (1, 2)
    assert {column: fill["count"] for column, fill in summary["filled"].items()} == EXPECTED_FILLED
    assert summary["filled"]["worst_area"] == {"strategy": "constant", "value": 0.0, "count": 2}
    assert summary["filled"]["site"]["strategy"] == "mode"
    assert summary["columns"] == columns and summary["pii"] == RULES["pii"]
    assert json.loads(caplog.records[-1].getMessage().removeprefix("etl summary ")) == summary

    for name in SPLITS:
        training = _only_file(out / name).read_text().splitlines()
        assert len(training) == EXPECTED_ROWS[name]
        assert ",".join(columns) not in training  # no header
        first = training[0].split(",")
        assert first[0] in {"0", "1"} and len(first) == len(columns)  # label first
        catalog = _only_file(out / "catalog" / f"split={name}").read_text().splitlines()
        assert catalog[0] == ",".join(columns)
        assert sorted(catalog[1:]) == sorted(training)


def test_main_without_awsglue_parses_arguments_for_run(spark, monkeypatch) -> None:
    """The local path (no awsglue here): argparse, defaults for --rules and --seed, and the
    running SparkSession; run itself is covered above (and by `python jobs/etl/etl.py ...`)."""
    with pytest.raises(ImportError):
        import awsglue  # noqa: F401
    calls = []
    monkeypatch.setattr(etl, "run", lambda session, args: calls.append((session, args)) or {"ok": True})
    argv = ["--input", "s3://raw/sample/", "--label", LABEL, "--output_catalog", "s3://curated/catalog/"]
    argv += [arg for name in SPLITS for arg in (f"--output_{name}", f"s3://curated/{name}/")]
    assert etl.main(argv) == {"ok": True}
    assert calls == [
        (
            spark,
            {
                "input": "s3://raw/sample/",
                "output_train": "s3://curated/train/",
                "output_validation": "s3://curated/validation/",
                "output_test": "s3://curated/test/",
                "output_catalog": "s3://curated/catalog/",
                "label": LABEL,
                "rules": "{}",
                "seed": "0",
                "columns": "",
                "schema": "",
            },
        )
    ]
    with pytest.raises(SystemExit):
        etl.main(argv[2:])  # --input is required


def test_main_on_glue_resolves_only_the_arguments_given(spark, monkeypatch) -> None:
    """The Glue path, with stand-ins for the awsglue modules: getResolvedOptions makes every
    name it is asked for required, so --rules and --seed are asked for only when passed."""
    asked, jobs = [], []

    def get_resolved_options(args: list[str], options: list[str]) -> dict[str, str]:  # as awsglue.utils does
        asked.append(list(options))
        parser = argparse.ArgumentParser()
        for option in options:
            parser.add_argument(f"--{option}", required=True)
        return vars(parser.parse_known_args(args[1:])[0])

    class Job:
        def __init__(self, context) -> None:
            jobs.append(self)

        def init(self, name: str, args: dict) -> None:
            self.name = name

        def commit(self) -> None:
            self.committed = True

    fakes = {
        "awsglue": types.ModuleType("awsglue"),
        "awsglue.context": types.SimpleNamespace(GlueContext=lambda sc: types.SimpleNamespace(spark_session=spark)),
        "awsglue.job": types.SimpleNamespace(Job=Job),
        "awsglue.utils": types.SimpleNamespace(getResolvedOptions=get_resolved_options),
    }
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    calls = []
    monkeypatch.setattr(etl, "run", lambda session, args: calls.append(args) or {"ok": True})
    argv = ["--JOB_NAME", "demo-split", "--job-bookmark-option", "job-bookmark-disable", "--input", "s3://raw/x/"]
    argv += ["--label", LABEL, "--output_catalog", "s3://c/catalog/"]
    argv += [arg for name in SPLITS for arg in (f"--output_{name}", f"s3://c/{name}/")]

    assert etl.main(argv) == {"ok": True}
    assert not {"rules", "seed", "schema"} & set(asked[-1]) and "JOB_NAME" in asked[-1]
    assert (calls[-1]["rules"], calls[-1]["seed"]) == ("{}", "0")
    assert (jobs[-1].name, jobs[-1].committed) == ("demo-split", True)

    etl.main([*argv, "--rules", json.dumps(RULES), "--seed", "3"])
    assert (json.loads(calls[-1]["rules"]), calls[-1]["seed"], calls[-1]["schema"]) == (RULES, "3", "")
    schema = {"features": ["mean_radius"], "classes": ["0", "1"]}
    etl.main([*argv, "--schema", json.dumps(schema)])
    assert "schema" in asked[-1] and json.loads(calls[-1]["schema"]) == schema


def test_a_failed_glue_run_reports_the_spark_exception(spark, tmp_path) -> None:
    """The offline Glue runner's ErrorMessage for a script that raised: the exception and what
    it says, not py4j's "An error occurred while calling o45.csv." wrapper."""
    from py4j.protocol import Py4JJavaError

    from tools.offline.jobs import spark_failure

    with pytest.raises(Exception) as missing:  # noqa: PT011 - pyspark's exception class moved between releases
        spark.read.csv(str(tmp_path / "nowhere.csv")).collect()
    assert re.match(r"^AnalysisException: \[PATH_NOT_FOUND\] Path does not exist: .*nowhere\.csv", spark_failure(missing.value))
    with pytest.raises(Py4JJavaError) as java:  # a JVM exception pyspark does not convert
        spark.sparkContext._jvm.java.lang.Class.forName("no.such.Reader")
    assert str(java.value).startswith("An error occurred while calling")
    assert spark_failure(java.value) == "ClassNotFoundException: no.such.Reader"
    assert spark_failure(KeyError("label")) == "KeyError: 'label'"


def test_missing_tokens_are_nulls_so_fills_and_dedupe_see_them(spark, tmp_path) -> None:
    """``NaN``, ``nan``, ``null``, ``NULL``, ``None`` and empty cells are all missing values, as
    the raw-schema check counts them: the column stays numeric, the fill sees every one, and
    rows differing only in how a value is missing are duplicates."""
    header = ["mean_radius", "site", "target"]
    rows = [[f"{10 + n / 10}", "north" if n % 2 else "south", str(n % 2)] for n in range(40)]
    tokens = ["NaN", "nan", "null", "NULL", "None", "", " NaN "]
    rows += [[token, "east", "1"] for token in tokens]  # one row, seven spellings of its missing value
    rows += [["12.5", token, "0"] for token in tokens[:3]]
    _write_csv(tmp_path / "raw" / "part.csv", header, rows)
    frame = read_csv(spark, str(tmp_path / "raw"))
    assert dict(frame.dtypes) == {"mean_radius": "double", "site": "string", "target": "int"}
    assert frame.where(F.col("mean_radius").isNull()).count() == len(tokens)
    assert frame.where(F.isnan("mean_radius")).count() == 0
    assert frame.where(F.col("site").isNull()).count() == 3
    prepared = prepare(frame, label="target", rules={"missing": {"*": "median", "site": "mode"}})
    assert prepared.distinct.count() == 40 + 1 + 1  # the token variants collapse into one row each
    assert prepared.null_counts == {"mean_radius": 1, "site": 1}


# --schema: a small table with the label in the middle, an id and a masked PII column that
# the model must not see, and fills (weight: median, site: mode) that must be the same with
# and without the schema.
SCHEMA_HEADER = ["id", "size", "answer", "site", "weight", "email"]
SCHEMA_RULES = {"pii": {"email": "mask"}}
SCHEMA = {"features": ["weight", "size", "site"], "classes": ["no", "yes"]}


def _run_args(source: Path, out: Path, label: str, **extra) -> dict:
    return {"input": str(source), **{f"output_{name}": f"{out}/{name}/" for name in SPLITS},
            "output_catalog": f"{out}/catalog/", "label": label, **extra}


def _outputs(out: Path) -> dict[str, dict[str, list[str]]]:
    """Per split: the training file's lines and the catalog partition's lines (header first)."""
    return {
        name: {"train": _only_file(out / name).read_text().splitlines(),
               "catalog": _only_file(out / "catalog" / f"split={name}").read_text().splitlines()}
        for name in SPLITS
    }


@pytest.fixture(scope="module")
def schema_runs(spark, tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """The small table run without and with --schema: {"plain"|"schema": (summary, outputs)}."""
    root = tmp_path_factory.mktemp("schema")
    rows = [
        [i, round(1 + (i * 37 % 50) / 10, 1), "yes" if i * 7 % 5 < 2 else "no",
         None if i % 9 == 4 else ("north", "south", "east")[i % 3],
         None if i % 8 == 3 else i * 13 % 17, f"user{i}@example.com"]
        for i in range(60)
    ]
    source = _write_csv(root / "raw" / "part.csv", SCHEMA_HEADER, rows).parent
    runs = {}
    for name, extra in (("plain", {}), ("schema", {"schema": json.dumps(SCHEMA)})):
        args = _run_args(source, root / name, "answer", rules=json.dumps(SCHEMA_RULES), **extra)
        runs[name] = (run(spark, args), _outputs(root / name))
    return runs


def test_schema_splits_hold_the_label_then_the_features_in_order(schema_runs) -> None:
    summary, outputs = schema_runs["schema"]
    catalog_columns = ["answer", "id", "size", "site", "weight", "email"]  # label first, then input order
    assert summary["columns"] == ["answer", "weight", "size", "site"]
    assert (summary["features"], summary["classes"]) == (SCHEMA["features"], SCHEMA["classes"])
    assert "features" not in schema_runs["plain"][0] and "classes" not in schema_runs["plain"][0]
    for name in SPLITS:
        training, catalog = outputs[name]["train"], outputs[name]["catalog"]
        assert catalog[0] == ",".join(catalog_columns)
        assert all(len(line.split(",")) == 4 for line in training)  # no id, no email, no header
        # the training rows are the catalog's rows, projected onto the label and the features
        projected = [",".join(cells[catalog_columns.index(c)] for c in summary["columns"])
                     for cells in (line.split(",") for line in catalog[1:])]
        assert sorted(projected) == sorted(training) and len(training) == summary["rows"][name]


def test_schema_keeps_every_row_in_its_split(schema_runs) -> None:
    """Cleaning and the split ignore --schema: the same ids, fills and labels in each split."""
    plain, with_schema = schema_runs["plain"][1], schema_runs["schema"][1]
    assert schema_runs["plain"][0]["rows"] == schema_runs["schema"][0]["rows"]
    for name in SPLITS:
        plain_rows = {cells[1]: cells for cells in (line.split(",") for line in plain[name]["train"])}  # by id
        catalog_rows = {cells[1]: cells for cells in (line.split(",") for line in with_schema[name]["catalog"][1:])}
        assert set(catalog_rows) == set(plain_rows)
        for row_id, cells in plain_rows.items():
            assert catalog_rows[row_id] == [str(SCHEMA["classes"].index(cells[0])), *cells[1:]]


def test_string_classes_become_their_index_in_splits_and_catalog(schema_runs) -> None:
    outputs = schema_runs["schema"][1]
    labels = {line.split(",")[0] for name in SPLITS
              for line in (*outputs[name]["train"], *outputs[name]["catalog"][1:])}
    assert labels == {"0", "1"}


def test_numeric_classes_change_nothing_on_an_all_feature_dataset(spark) -> None:
    """A bundled sample's shape (numeric features, a 0/1 label last) with its classes declared:
    the splits hold the same rows, columns and values as without --schema (40 rows of the sample;
    the DataFrames compared, no files written)."""
    header = SAMPLE.read_text().splitlines()[0].split(",")
    rows = [[float(value) for value in line.split(",")] for line in SAMPLE.read_text().splitlines()[1:41]]
    frame = spark.createDataFrame([[*row[:-1], int(row[-1])] for row in rows],
                                  ", ".join(f"`{name}` double" for name in header[:-1]) + f", `{LABEL}` int")
    schema = {"features": [name for name in header if name != LABEL], "classes": ["0", "1"]}
    plain, mapped = transform(frame, label=LABEL, rules={}), transform(frame, label=LABEL, rules={}, schema=schema)
    for name in SPLITS:
        assert mapped[name].columns == plain[name].columns
        assert [tuple(row) for row in mapped[name].collect()] == [tuple(row) for row in plain[name].collect()]


def test_numeric_label_matches_classes_by_number(spark) -> None:
    """A double label 1.0 is class "1"; a string label is matched by its trimmed text."""
    frame = spark.createDataFrame(
        [(float(i % 3), f" {('low', 'mid', 'high')[i % 3]} ", float(i)) for i in range(30)],
        "score double, grade string, x double",
    )
    by_number = transform(frame, label="score", rules={}, schema={"features": ["x"], "classes": ["2", "0", 1]})
    by_text = transform(frame, label="grade", rules={}, schema={"features": ["x"], "classes": ["high", "low", "mid"]})
    rows = {row["x"]: row["score"] for part in by_number.values() for row in part.collect()}
    assert rows == {float(i): (1, 2, 0)[i % 3] for i in range(30)}
    rows = {row["x"]: row["grade"] for part in by_text.values() for row in part.collect()}
    assert rows == {float(i): (1, 2, 0)[i % 3] for i in range(30)}


def test_a_label_outside_the_classes_fails_before_writing(spark, tmp_path) -> None:
    labels = ["yes", "no"] * 10 + ["maybe", "unsure", "maybe"]
    source = _write_csv(tmp_path / "raw" / "part.csv", ["x", "answer"], [[i, v] for i, v in enumerate(labels)]).parent
    args = _run_args(source, tmp_path / "out", "answer", schema={"features": ["x"], "classes": ["no", "yes"]})
    with pytest.raises(ValueError) as error:
        run(spark, args)
    assert str(error.value) == "label: value 'maybe' (3 rows) is not one of the classes no, yes"
    assert not (tmp_path / "out").exists()


def test_schema_is_checked_before_the_input_is_read(spark, tmp_path) -> None:
    args = _run_args(tmp_path / "nowhere", tmp_path / "out", LABEL, schema='{"features": ')
    with pytest.raises(ValueError, match=re.escape("schema: not valid JSON (")):
        run(spark, args)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"features": []}, "schema.features: expected a non-empty list of column names"),
        ({"classes": ["0", "1"]}, "schema.features: expected a non-empty list of column names"),
        ({"features": "mean_radius"}, "schema.features: expected a non-empty list of column names"),
        ({"features": ["x"]}, "schema.features: column 'x' not in the data (columns: mean_radius, "),
        ({"features": ["mean_radius", "target"]}, "schema.features: 'target' is the label"),
        ({"features": ["phone"]}, "schema.features: 'phone' is a dropped PII column (rules.pii)"),
        ({"features": ["mean_radius", "site", "mean_radius"]}, "schema.features: 'mean_radius' listed twice"),
        ({"features": ["site"], "classes": ["1"]}, "schema.classes: expected a list of at least 2 distinct values"),
        ({"features": ["site"], "classes": ["a", " a"]}, "schema.classes: expected a list of at least 2 distinct"),
        ({"features": ["site"], "classes": "0,1"}, "schema.classes: expected a list of at least 2 distinct values"),
        # target is an integer column: "1" and "1.0" are the same class
        ({"features": ["site"], "classes": ["1", "1.0"]}, "schema.classes: expected a list of at least 2 distinct"),
        ({"features": ["site"], "label": "target"}, "schema: unknown key 'label'; allowed: features, classes"),
        ('{"features": ["site"]', "schema: not valid JSON ("),
        ('["site"]', "schema: expected an object with features and classes, got list"),
    ],
)
def test_bad_schema_raises_naming_the_field(spark, dirty_df, schema, message) -> None:
    context = spark.sparkContext
    context.setJobGroup("schema-check", "no Spark job before the schema is valid")
    try:
        with pytest.raises(ValueError, match=re.escape(message)):
            transform(dirty_df, label=LABEL, rules=RULES, schema=schema)
        assert context.statusTracker().getJobIdsForGroup("schema-check") == []
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
