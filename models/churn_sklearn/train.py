"""Script-mode training and inference handlers for a churn classifier on mixed features (scikit-learn container).

Training follows the SageMaker script-mode pattern: paths default to the ``SM_*`` variables the
sagemaker-training-toolkit sets (https://github.com/aws/sagemaker-training-toolkit,
ENVIRONMENT_VARIABLES.md), hyperparameters arrive as command-line arguments. The toolkit turns
a one-character name into a single-dash flag (``mapping.to_cmd_args``), so ``C`` arrives as
``-C 1.0``; ``--C`` is accepted too.

The channels hold the platform's split format: CSV without header, the class index first
(0 = ``no``, 1 = ``yes``), then the features ``plan, region, tenure_months, monthly_charges,
support_calls, contract``. Categorical values arrive as text: the columns whose values are not
all numbers are one-hot encoded, the others standardized. Their positions (among the features,
0-based) are detected on the training data and kept in the saved pipeline's ColumnTransformer.

Serving follows the scikit-learn container's handler contract
(https://github.com/aws/sagemaker-scikit-learn-container, ``serving.py``): ``model_fn`` is
required; ``input_fn`` replaces the default decoder, which parses CSV into a float array and so
cannot carry text categories, with a pandas one (``text/csv`` only); ``predict_fn`` returns one
probability of churn per row instead of the default ``model.predict``. ``output_fn`` is the
container's default: for ``Accept: text/csv`` a 1-D prediction is one value per line.
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODEL_FILE = "model.joblib"
CSV = "text/csv"
POSITIVE = 1  # class index of "yes" (churned)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-C", "--C", dest="C", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--max-iter", "--max_iter", dest="max_iter", type=int, default=1000)
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=os.environ.get("SM_MODEL_DIR"))
    args = parser.parse_args(argv)
    if not args.train or not args.model_dir:
        parser.error("the train channel and the model dir are required (SM_CHANNEL_TRAIN, SM_MODEL_DIR)")
    return args


def read_rows(source: str | io.StringIO | Path) -> pd.DataFrame:
    """CSV rows without header, columns named by position (0, 1, ...)."""
    frame = pd.read_csv(source, header=None, skipinitialspace=True)
    frame.columns = range(frame.shape[1])
    return frame


def load_channel(directory: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Every non-empty CSV file under a channel directory (Spark writes ``part-*.csv``): no
    header, the class index in the first column, the features after it."""
    files = sorted(path for path in Path(directory).rglob("*.csv") if path.stat().st_size > 0)
    if not files:
        raise FileNotFoundError(f"no CSV file in channel directory {directory}")
    data = pd.concat([read_rows(path) for path in files], ignore_index=True)
    labels = data[0].to_numpy()
    if not set(np.unique(labels)) <= {0, 1}:
        raise ValueError(f"the first column must be the class index 0 (no) or 1 (yes); found {sorted(set(labels))}")
    features = data.drop(columns=0)
    features.columns = range(features.shape[1])
    return features, labels.astype(int)


def categorical_columns(features: pd.DataFrame) -> list[int]:
    """Positions of the columns whose values are not all numbers (pandas reads them as text:
    ``object``, or ``str`` under pandas 3)."""
    return [position for position, dtype in enumerate(features.dtypes) if not pd.api.types.is_numeric_dtype(dtype)]


def stored_categorical_columns(model: Pipeline) -> list[int]:
    """The categorical positions the pipeline was trained with (its one-hot encoder's columns)."""
    return next(list(columns) for name, _, columns in model.named_steps["columns"].transformers
                if name == "categorical")


def typed(features: pd.DataFrame, categorical: list[int]) -> pd.DataFrame:
    """Categorical positions as text, the others as floats."""
    features = features.copy()
    for position in features.columns:
        features[position] = features[position].astype(str if position in categorical else float)
    return features


def train(features: pd.DataFrame, labels: np.ndarray, c: float, max_iter: int) -> Pipeline:
    categorical = categorical_columns(features)
    numeric = [position for position in range(features.shape[1]) if position not in categorical]
    columns = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                                 ("numeric", StandardScaler(), numeric)])
    model = Pipeline([("columns", columns),
                      ("classify", LogisticRegression(C=c, max_iter=max_iter, solver="lbfgs"))])
    return model.fit(typed(features, categorical), labels)


def churn_probability(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    probabilities = model.predict_proba(typed(features, stored_categorical_columns(model)))
    return probabilities[:, list(model.classes_).index(POSITIVE)]


def report(model: Pipeline, split: str, features: pd.DataFrame, labels: np.ndarray) -> None:
    """One ``<split>:<metric>=<value>`` line per metric, for metric-definition regexes."""
    scores = churn_probability(model, features)
    if len(set(labels)) == 2:  # ROC AUC needs both classes
        print(f"{split}:auc={roc_auc_score(labels, scores):.6f}")
    print(f"{split}:logloss={log_loss(labels, scores, labels=[0, 1]):.6f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    features, labels = load_channel(args.train)
    model = train(features, labels, args.C, args.max_iter)
    print(f"categorical feature positions: {stored_categorical_columns(model)}")
    report(model, "train", features, labels)
    if args.validation:
        report(model, "validation", *load_channel(args.validation))
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(args.model_dir) / MODEL_FILE)


def model_fn(model_dir: str) -> Pipeline:
    """Load the pipeline ``main`` saved."""
    return joblib.load(Path(model_dir) / MODEL_FILE)


def input_fn(request_body: str | bytes, content_type: str) -> pd.DataFrame:
    """``text/csv``: one or more rows of the six raw feature values, no header, no label. Columns
    whose values are all numbers become floats, the others text (as in training)."""
    if content_type.split(";")[0].strip().lower() != CSV:
        raise ValueError(f"unsupported content type {content_type!r}: this model accepts {CSV} only")
    text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
    if not text.strip():
        raise ValueError("the request has no rows")
    features = read_rows(io.StringIO(text))
    return typed(features, categorical_columns(features))


def predict_fn(input_data: pd.DataFrame, model: Pipeline) -> np.ndarray:
    """The probability of churn (class 1, ``yes``) per row: a 1-D array, one score per row. The
    columns are cast to the types the model was trained with first."""
    return churn_probability(model, input_data)


if __name__ == "__main__":
    main()
