"""Script-mode training for AWS's XGBoost framework container: your own XGBoost code, served by
the container's default handlers.

Training follows the SageMaker script-mode contract, as in ``models/wine_sklearn/train.py``: the
channels in ``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION`` (CSV without header, the class index
first, the features after it), hyperparameters as command-line options (``--num_round 50
--max_depth 3 --eta 0.3``), the model saved to ``SM_MODEL_DIR``. It trains ``multi:softprob``
with ``xgboost.train`` and prints ``validation:mlogloss`` and ``validation:accuracy`` for metric
definitions.

Serving uses the XGBoost framework container's handler contract
(https://github.com/aws/sagemaker-xgboost-container, ``handler_service.py``,
``DefaultXGBoostUserModuleInferenceHandler``): ``model_fn`` is required (the container has no
default loader); the defaults do the rest: ``input_fn`` decodes ``text/csv`` to a ``DMatrix``,
``predict_fn`` calls ``model.predict(data, validate_features=False)`` and ``output_fn`` writes
one line of class probabilities per row.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import xgboost as xgb

MODEL_FILE = "xgboost-model"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_round", "--num-round", dest="num_round", type=int, default=50)
    parser.add_argument("--max_depth", "--max-depth", dest="max_depth", type=int, default=3)
    parser.add_argument("--eta", type=float, default=0.3)
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=os.environ.get("SM_MODEL_DIR"))
    args = parser.parse_args(argv)
    if not args.train or not args.model_dir:
        parser.error("the train channel and the model dir are required (SM_CHANNEL_TRAIN, SM_MODEL_DIR)")
    return args


def load_channel(directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Every non-empty CSV file under a channel directory: the class index first, the features after it."""
    files = sorted(path for path in Path(directory).rglob("*.csv") if path.stat().st_size > 0)
    if not files:
        raise FileNotFoundError(f"no CSV file in channel directory {directory}")
    data = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in files])
    return data[:, 1:], data[:, 0].astype(int)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    features, labels = load_channel(args.train)
    classes = int(labels.max()) + 1
    params = {"objective": "multi:softprob", "num_class": classes, "eval_metric": "mlogloss",
              "max_depth": args.max_depth, "eta": args.eta, "seed": 0}
    train = xgb.DMatrix(features, label=labels)
    booster = xgb.train(params, train, num_boost_round=args.num_round)
    if args.validation:
        valid_features, valid_labels = load_channel(args.validation)
        probabilities = booster.predict(xgb.DMatrix(valid_features))
        picked = probabilities[np.arange(len(valid_labels)), valid_labels]
        print(f"validation:mlogloss={-np.mean(np.log(np.clip(picked, 1e-15, 1))):.6f}")
        print(f"validation:accuracy={np.mean(probabilities.argmax(axis=1) == valid_labels):.6f}")
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    booster.save_model(str(Path(args.model_dir) / MODEL_FILE))


def model_fn(model_dir: str) -> xgb.Booster:
    """Load the booster ``main`` saved (required: the XGBoost framework container has no default)."""
    booster = xgb.Booster()
    booster.load_model(str(Path(model_dir) / MODEL_FILE))
    return booster


if __name__ == "__main__":
    main()
