"""A model in its own image, following SageMaker's container contract: `docker run <image> train`
trains, `docker run <image> serve` answers HTTP. Standard library, numpy and scikit-learn only.

* `train` ("How Amazon SageMaker AI Provides Training Information", SageMaker Developer Guide:
  https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html)
  reads `/opt/ml/input/config/hyperparameters.json` (values are strings) and the CSV files of the
  `train` and `validation` channels (no header, the label's class index first, the features after
  it, categories as text), fits a logistic regression on one-hot encoded categories, prints
  `validation:auc=...` and `validation:logloss=...` for the job's metric definitions and writes the
  model to `/opt/ml/model/`. A failure's reason goes to `/opt/ml/output/failure`.
* `serve` ("Custom Inference Code with Hosting Services":
  https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html) loads the
  model from `/opt/ml/model/` and answers `GET /ping` and `POST /invocations` (text/csv rows of
  features, the positive class's probability back, one line per row) on port 8080, or on
  `SAGEMAKER_BIND_TO_PORT` inside an inference pipeline ("Run Real-time Predictions with an
  Inference Pipeline": https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipeline-real-time.html).

Every path is read from the variables the SageMaker training toolkit sets (`SM_MODEL_DIR`,
`SM_CHANNEL_TRAIN`, ...) with the `/opt/ml/...` path as default: in the image the defaults apply,
and the offline runner, which has no `/opt/ml`, points the variables at its temporary tree.
"""

import csv
import http.server
import io
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MISSING = {"", "nan", "NaN", "null", "NULL", "None"}


def path(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable, default))


def read_rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row]


def read_channel(directory: Path) -> tuple[np.ndarray, list[list[str]]]:
    rows = [row for file in sorted(directory.glob("*.csv")) for row in read_rows(file.read_text())]
    if not rows:
        raise ValueError(f"no CSV rows in {directory}")
    return np.array([float(row[0]) for row in rows]), [row[1:] for row in rows]


def is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return value in MISSING


def as_table(rows: list[list[str]], text_columns: list[int]) -> np.ndarray:
    """Features as objects: numbers as floats (missing ones NaN), categories as text."""
    table = np.array(rows, dtype=object)
    for column in range(table.shape[1]):
        if column not in text_columns:
            table[:, column] = [np.nan if value in MISSING else float(value) for value in table[:, column]]
    return table


def train() -> None:
    config = path("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
    hyperparameters = json.loads((config / "hyperparameters.json").read_text())
    labels, rows = read_channel(path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    text_columns = [c for c in range(len(rows[0])) if not all(is_number(row[c]) for row in rows)]
    numeric = [c for c in range(len(rows[0])) if c not in text_columns]
    model = make_pipeline(
        ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"), text_columns),
                           ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numeric)]),
        LogisticRegression(C=float(hyperparameters.get("C", "1.0")),
                           max_iter=int(hyperparameters.get("max_iter", "1000"))))
    model.fit(as_table(rows, text_columns), labels)
    v_labels, v_rows = read_channel(path("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    scores = model.predict_proba(as_table(v_rows, text_columns))[:, 1]
    print(f"validation:auc={roc_auc_score(v_labels, scores):.6f}")
    print(f"validation:logloss={log_loss(v_labels, scores, labels=[0, 1]):.6f}")
    with open(path("SM_MODEL_DIR", "/opt/ml/model") / "model.pkl", "wb") as file:
        pickle.dump({"model": model, "text_columns": text_columns}, file)


class Handler(http.server.BaseHTTPRequestHandler):
    saved: dict = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.answer(200 if self.path == "/ping" else 404, b"")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/invocations":
            return self.answer(404, b"")
        if self.headers.get("Content-Type", "").split(";")[0] != "text/csv":
            return self.answer(415, b"send text/csv rows of features")
        if self.headers.get("Accept", "text/csv") not in ("text/csv", "*/*"):
            return self.answer(406, b"answers text/csv only")
        try:
            table = as_table(read_rows(body.decode("utf-8")), self.saved["text_columns"])
            scores = self.saved["model"].predict_proba(table)[:, 1]
        except ValueError as error:
            return self.answer(400, str(error).encode())
        self.answer(200, "".join(f"{score}\n" for score in scores).encode(), "text/csv")

    def answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # one line per request on stderr is noise here
        pass


def serve() -> None:
    with open(path("SM_MODEL_DIR", "/opt/ml/model") / "model.pkl", "rb") as file:
        Handler.saved = pickle.load(file)
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 - the container's port


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("train", "serve"):
        sys.exit(f"usage: {sys.argv[0]} train|serve (got {command!r})")
    try:
        train() if command == "train" else serve()
    except Exception as error:  # the job's FailureReason
        if command == "train":
            failure = path("SM_OUTPUT_DIR", "/opt/ml/output") / "failure"
            failure.write_text(f"{type(error).__name__}: {error}")
        raise
