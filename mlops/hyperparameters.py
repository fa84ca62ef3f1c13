"""The built-in algorithms' hyperparameter tables (XGBoost, Linear Learner), for synth-time
checks of the stage configuration.

The tables live beside the prepare-run handler (``lambda/prepare_run/xgboost_hyperparameters.py``,
``lambda/prepare_run/linear_learner_hyperparameters.py``), which checks execution input with them
at run time; this module loads those very files, so the config and the execution input accept
exactly the same names, types and ranges.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TABLES = Path(__file__).resolve().parent.parent / "lambda" / "prepare_run"
TABLE = TABLES / "xgboost_hyperparameters.py"


def _load(file: Path, name: str) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


xgboost = _load(TABLE, "mlops_xgboost_hyperparameters")
linear_learner = _load(TABLES / "linear_learner_hyperparameters.py", "mlops_linear_learner_hyperparameters")
