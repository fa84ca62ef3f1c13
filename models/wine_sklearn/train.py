"""Script-mode training and inference handlers for a wine-style classifier (scikit-learn container).

Training follows the SageMaker script-mode pattern: paths default to the ``SM_*`` variables the
sagemaker-training-toolkit sets (https://github.com/aws/sagemaker-training-toolkit,
ENVIRONMENT_VARIABLES.md), hyperparameters arrive as command-line arguments. The toolkit turns
a one-character name into a single-dash flag (``mapping.to_cmd_args``), so ``C`` arrives as
``-C 1.0``; ``--C`` is accepted too.

Serving follows the scikit-learn container's handler contract
(https://github.com/aws/sagemaker-scikit-learn-container, ``serving.py``): ``model_fn`` is
required, ``predict_fn`` here returns class probabilities instead of the default
``model.predict``; input and output use the container's defaults (CSV, JSON or NPY).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

MODEL_FILE = "model.joblib"


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


def load_channel(directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Every non-empty CSV file under a channel directory (Spark writes ``part-*.csv``): no
    header, the class index in the first column, numeric features after it."""
    files = sorted(path for path in Path(directory).rglob("*.csv") if path.stat().st_size > 0)
    if not files:
        raise FileNotFoundError(f"no CSV file in channel directory {directory}")
    data = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in files])
    return data[:, 1:], data[:, 0].astype(int)


def train(features: np.ndarray, labels: np.ndarray, c: float, max_iter: int) -> Pipeline:
    # lbfgs fits one multinomial model over all classes (scikit-learn's default for K > 2).
    model = Pipeline([("scale", StandardScaler()),
                      ("classify", LogisticRegression(C=c, max_iter=max_iter, solver="lbfgs"))])
    return model.fit(features, labels)


def report(model: Pipeline, split: str, features: np.ndarray, labels: np.ndarray) -> None:
    """One ``<split>:<metric>=<value>`` line per metric, for metric-definition regexes."""
    probabilities = model.predict_proba(features)
    print(f"{split}:mlogloss={log_loss(labels, probabilities, labels=model.classes_):.6f}")
    print(f"{split}:accuracy={accuracy_score(labels, model.classes_[probabilities.argmax(axis=1)]):.6f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    features, labels = load_channel(args.train)
    model = train(features, labels, args.C, args.max_iter)
    report(model, "train", features, labels)
    if args.validation:
        report(model, "validation", *load_channel(args.validation))
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(args.model_dir) / MODEL_FILE)


def model_fn(model_dir: str) -> Pipeline:
    """Load the pipeline ``main`` saved."""
    return joblib.load(Path(model_dir) / MODEL_FILE)


def predict_fn(input_data: np.ndarray, model: Pipeline) -> np.ndarray:
    """Class probabilities, one row per input row, one column per class index."""
    return model.predict_proba(input_data)


if __name__ == "__main__":
    main()
