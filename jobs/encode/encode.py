#!/usr/bin/env python3
"""One-hot encode categorical features for built-in XGBoost (Processing job script and serving handlers).

Built-in XGBoost reads numbers only. For a dataset with categorical features this one file runs
twice, in AWS's scikit-learn container, with the same fitted encoder object both times:

1. as a SageMaker Processing job before training: fit a one-hot encoding of the categorical
   features on the TRAIN split only, write encoded train/validation splits for XGBoost and the
   fitted encoder as a model artifact;
2. as the first container of an inference pipeline (``SAGEMAKER_PROGRAM=encode.py`` in the
   scikit-learn container, then XGBoost), so endpoint and batch-transform clients send raw rows
   (categories as text) and get XGBoost's predictions. SageMaker's multi-container docs
   (https://docs.aws.amazon.com/sagemaker/latest/dg/multi-container-create.html): "Use the
   Containers parameter instead of PrimaryContainer ... The default mode is Serial": each
   container's response is the next one's request.

Processing contract (``python encode.py --categorical 0,2 [--train-dir ...]``)::

    --train-dir DIR        default /opt/ml/processing/train       every non-empty *.csv under
    --validation-dir DIR   default /opt/ml/processing/validation  each (recursive, sorted): no
                                                                  header, the label first, then
                                                                  the features in the dataset's
                                                                  order, missing values filled
    --categorical 0,1,5    required: 0-based positions AMONG THE FEATURES (column index - 1) of
                           the categorical ones; non-empty, in range, no duplicates
    --output-dir DIR       default /opt/ml/processing/output; written:
        DIR/train/train.csv              no header: the label unchanged (its text as read), then
        DIR/validation/validation.csv    the encoded features, numbers only
        DIR/model/model.tar.gz           encoder.joblib (the fitted transformer) and
                                         encoding.json (human-readable, below)

The encoder is ``ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore",
sparse_output=False), positions)], remainder="passthrough", verbose_feature_names_out=False)``:
categorical values are read as text (``3`` is the category ``"3"``), their categories learned on
the train split only, sorted (OneHotEncoder's order); a category unseen in training encodes as
all zeros. Numeric features pass through unchanged, after the one-hot block (the transformer's
output order). A categorical feature with more than 200 distinct train values is refused: one-hot
encoding an identifier only adds columns. ``encoding.json``::

    {"features": n_in, "encoded_features": n_out,
     "categorical": {"<position>": [categories in output order], ...},
     "columns": ["<position>=<category>" or "<position>" per output column]}

Numbers are written so XGBoost reads them back exactly: integers as ``0``, ``1``, ``12``, other
floats as Python's shortest round-trip ``repr``. ``main`` returns a summary and prints it as one
line of JSON; a bad argument or split is one ``ValueError`` line (the job's FailureReason).

Serving contract: the scikit-learn container's handlers
(https://github.com/aws/sagemaker-scikit-learn-container, ``serving.py`` with the sagemaker-containers
transformer). The model data is ``model.tar.gz`` above; the module only imports at load time (the
container imports it to find the handlers), encoding runs only under ``__main__``.

* ``model_fn(model_dir)`` loads ``encoder.joblib``.
* ``input_fn(body, content_type)``: ``text/csv`` only (str or bytes): one or more rows of the RAW
  features in the dataset's order, no label, no header, categories as text, CSV quoting allowed;
  every value is kept as its text. Returns a pandas DataFrame. Other types raise ``ValueError``.
* ``predict_fn(data, encoder)``: casts the categorical positions the encoder stores to ``str`` and
  the others to ``float`` (so a category written as a number, ``3``, matches the training
  category ``"3"``); returns the encoded 2-D numpy array. A row of the wrong width raises
  ``ValueError`` saying how many features are expected.
* ``output_fn(prediction, accept)``: ``text/csv`` only: one line per row, values comma-joined, a
  ``\\n`` after each line, which built-in XGBoost, the next container, reads as ``text/csv``.
  Returned as ``(body, "text/csv")`` so the response carries that content type.

The pipeline sets ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv`` on this container, the
practice of SageMaker's "Inference pipelines" examples and the SageMaker Python SDK's
``PipelineModel`` with a scikit-learn preprocessor, so its intermediate responses are CSV
whatever ``Accept`` the client sent. The processing job and the serving container must use the
same scikit-learn container version: ``encoder.joblib`` is a pickle.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder

CSV = "text/csv"
ENCODER_FILE = "encoder.joblib"
ENCODING_FILE = "encoding.json"
MAX_CATEGORIES = 200
ONEHOT = "onehot"
_EXACT_INTEGER = 2.0**53  # integers up to here print as integers and read back exactly

# SageMaker mounts inputs and outputs here; offline runs point it at a temp dir.
PROCESSING_ROOT = os.environ.get("PROCESSING_ROOT", "/opt/ml/processing")


# --- reading and typing -------------------------------------------------------------------------


def parse_positions(text: str) -> list[int]:
    """``--categorical``: comma-separated feature positions, non-empty, no duplicates (the range is
    checked against the data in ``fit_encoder``)."""
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if not items:
        raise ValueError("--categorical: name at least one categorical feature position (0-based, among the features)")
    try:
        positions = [int(item) for item in items]
    except ValueError:
        raise ValueError(f"--categorical: {text!r} is not a comma-separated list of feature positions") from None
    duplicates = sorted({p for p in positions if positions.count(p) > 1})
    if duplicates:
        raise ValueError(f"--categorical: position {duplicates[0]} is given more than once")
    return positions


def read_split(directory: str) -> tuple[list[str], pd.DataFrame]:
    """Every non-empty ``*.csv`` under ``directory`` (recursive, sorted): the labels as text and
    the features (columns 0, 1, ... by position), every value kept as its text."""
    files = sorted(path for path in Path(directory).rglob("*.csv") if path.stat().st_size > 0)
    if not files:
        raise FileNotFoundError(f"no non-empty CSV file under {directory}")
    frames = []
    for path in files:
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
        if frames and frame.shape[1] != frames[0].shape[1]:
            raise ValueError(f"{path}: {frame.shape[1]} columns, but {files[0]} has {frames[0].shape[1]}")
        if frame.isna().any().any():  # a short row: pandas fills the missing fields
            raise ValueError(f"{path}: some rows have fewer than {frame.shape[1]} values")
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    if data.shape[1] < 2:
        raise ValueError(f"{directory}: rows need the label and at least one feature")
    features = data.drop(columns=0)
    features.columns = range(features.shape[1])
    return data[0].tolist(), features


def typed(features: pd.DataFrame, categorical: list[int]) -> pd.DataFrame:
    """Categorical positions as text, the others as floats (columns renamed 0, 1, ...)."""
    features = pd.DataFrame(features).copy()
    features.columns = range(features.shape[1])
    for position in features.columns:
        if position in categorical:
            features[position] = features[position].astype(str)
            continue
        try:
            features[position] = features[position].astype(float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"feature {position} is numeric (not in --categorical) but {error}") from None
    return features


# --- the encoder --------------------------------------------------------------------------------


def fit_encoder(features: pd.DataFrame, positions: list[int]) -> ColumnTransformer:
    """The one-hot encoder, fitted on the train split's features."""
    count = features.shape[1]
    outside = [p for p in positions if not 0 <= p < count]
    if outside:
        raise ValueError(f"--categorical: position {outside[0]} is out of range; the data has {count} features "
                         f"(positions 0 to {count - 1}, the label not counted)")
    for position in positions:
        distinct = features[position].nunique()
        if distinct > MAX_CATEGORIES:
            raise ValueError(f"--categorical: feature {position} has {distinct} distinct values in the train split; "
                             f"at most {MAX_CATEGORIES} are one-hot encoded (declare it text with role id or ignore)")
    encoder = ColumnTransformer(
        [(ONEHOT, OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(positions))],
        remainder="passthrough", verbose_feature_names_out=False)
    return encoder.fit(typed(features, positions))


def categorical_positions(encoder: ColumnTransformer) -> list[int]:
    """The categorical positions the fitted encoder one-hot encodes."""
    return next([int(p) for p in columns] for name, _, columns in encoder.transformers_ if name == ONEHOT)


def encode(encoder: ColumnTransformer, features: pd.DataFrame) -> np.ndarray:
    """Raw features (text or numbers) to the encoded 2-D float array."""
    expected = encoder.n_features_in_
    width = pd.DataFrame(features).shape[1]
    if width != expected:
        raise ValueError(f"expected {expected} features per row (the raw features in the dataset's order, "
                         f"no label), got {width}")
    return np.asarray(encoder.transform(typed(features, categorical_positions(encoder))), dtype=float)


def describe(encoder: ColumnTransformer) -> dict[str, Any]:
    """``encoding.json``: widths, categories per categorical position, and one name per output
    column in output order (``<position>=<category>`` or ``<position>``)."""
    onehot = encoder.named_transformers_[ONEHOT]
    categories = {str(p): [str(c) for c in cats] for p, cats in zip(categorical_positions(encoder), onehot.categories_)}
    columns = []
    for name, _, selected in encoder.transformers_:
        if name == ONEHOT:
            columns += [f"{position}={category}" for position, cats in categories.items() for category in cats]
        elif name == "remainder":  # always "passthrough" here (fitted as an identity FunctionTransformer)
            columns += [str(int(p)) for p in selected]
    return {"features": int(encoder.n_features_in_), "encoded_features": len(columns),
            "categorical": categories, "columns": columns}


# --- writing ------------------------------------------------------------------------------------


def number(value: float) -> str:
    """A float as text XGBoost reads back exactly: ``1`` for integers, else the shortest repr."""
    value = float(value)
    if value.is_integer() and abs(value) < _EXACT_INTEGER:
        return str(int(value))
    return repr(value)


def csv_lines(encoded: np.ndarray, labels: list[str] | None = None) -> str:
    """One line per row, values comma-joined, ``\\n`` after each; the label text first if given."""
    rows = (",".join(number(v) for v in row) for row in encoded)
    if labels is not None:
        rows = (f"{label},{row}" for label, row in zip(labels, rows))
    return "".join(f"{row}\n" for row in rows)


def write_model(encoder: ColumnTransformer, directory: Path) -> Path:
    """``model.tar.gz`` with ``encoder.joblib`` and ``encoding.json`` at its root."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        joblib.dump(encoder, Path(scratch) / ENCODER_FILE)
        (Path(scratch) / ENCODING_FILE).write_text(json.dumps(describe(encoder), indent=2) + "\n", encoding="utf-8")
        with tarfile.open(directory / "model.tar.gz", "w:gz") as archive:
            for name in (ENCODER_FILE, ENCODING_FILE):
                archive.add(Path(scratch) / name, arcname=name)
    return directory / "model.tar.gz"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-dir", default=f"{PROCESSING_ROOT}/train")
    parser.add_argument("--validation-dir", default=f"{PROCESSING_ROOT}/validation")
    parser.add_argument("--categorical", required=True,
                        help="comma-separated 0-based positions among the features (the label not counted)")
    parser.add_argument("--output-dir", default=f"{PROCESSING_ROOT}/output")
    args = parser.parse_args(argv)

    positions = parse_positions(args.categorical)
    train_labels, train = read_split(args.train_dir)
    validation_labels, validation = read_split(args.validation_dir)
    if validation.shape[1] != train.shape[1]:
        raise ValueError(f"the validation split has {validation.shape[1]} features, the train split {train.shape[1]}")
    encoder = fit_encoder(train, positions)
    output = Path(args.output_dir)
    for name, labels, features in (("train", train_labels, train), ("validation", validation_labels, validation)):
        (output / name).mkdir(parents=True, exist_ok=True)
        (output / name / f"{name}.csv").write_text(csv_lines(encode(encoder, features), labels), encoding="utf-8")
    write_model(encoder, output / "model")
    encoding = describe(encoder)
    summary = {"train_rows": len(train_labels), "validation_rows": len(validation_labels),
               "features": encoding["features"], "encoded_features": encoding["encoded_features"],
               "categories": {position: len(cats) for position, cats in encoding["categorical"].items()}}
    print(json.dumps(summary))
    return summary


# --- serving (the scikit-learn container's handlers) ---------------------------------------------


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def model_fn(model_dir: str) -> ColumnTransformer:
    """The fitted encoder from the model data (``model.tar.gz`` extracted into ``model_dir``)."""
    return joblib.load(Path(model_dir) / ENCODER_FILE)


def input_fn(request_body: str | bytes, content_type: str) -> pd.DataFrame:
    """``text/csv``: rows of raw feature values (no label, no header), every value as its text."""
    if _media_type(content_type) != CSV:
        raise ValueError(f"unsupported content type {content_type!r}: the encoder accepts {CSV} only")
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row]
    if not rows:
        raise ValueError("the request has no rows")
    widths = sorted({len(row) for row in rows})
    if len(widths) > 1:
        raise ValueError(f"the CSV rows have different numbers of values ({', '.join(map(str, widths))})")
    return pd.DataFrame(rows, columns=range(widths[0]), dtype=object)


def predict_fn(input_data: pd.DataFrame, model: ColumnTransformer) -> np.ndarray:
    """The encoded rows: categorical positions as text, the others as floats, then the encoder."""
    return encode(model, pd.DataFrame(input_data))


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    """``text/csv``: one line per row, comma-joined, what built-in XGBoost reads next."""
    if _media_type(accept) != CSV:
        raise ValueError(f"unsupported accept type {accept!r}: the encoder answers {CSV} only "
                         f"(set SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT={CSV} on this container)")
    return csv_lines(np.atleast_2d(np.asarray(prediction, dtype=float))), CSV


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as error:  # one line for the job's FailureReason
        raise SystemExit(f"encode: {error}") from None
