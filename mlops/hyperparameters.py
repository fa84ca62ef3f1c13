"""The built-in XGBoost algorithm's hyperparameter table, for synth-time checks of the stage
configuration.

The table lives beside the prepare-run handler (``lambda/prepare_run/xgboost_hyperparameters.py``),
which checks execution input with it at run time; this module loads that very file, so the
config and the execution input accept exactly the same names, types and ranges.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TABLE = Path(__file__).resolve().parent.parent / "lambda" / "prepare_run" / "xgboost_hyperparameters.py"


def _load() -> ModuleType:
    name = "mlops_xgboost_hyperparameters"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TABLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


xgboost = _load()
