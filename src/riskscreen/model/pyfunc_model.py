"""MLflow "model from code": lets `mlflow models serve` and `mlflow.pyfunc` use the bundle.

Logged as source, not as a pickle; MLflow executes this file when the model is loaded, and it
reads the bundle's text files, whatever the model family (trees, linear, EBM). The riskscreen
service does not go through here: it verifies hashes and reads the bundle itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from riskscreen.contract.features import encode_frame
from riskscreen.model.bundle import ModelBundle, load_bundle


class RiskscreenModel(PythonModel):
    """Predicts the calibrated probability of a long settlement time for each intake row."""

    bundle: ModelBundle

    def load_context(self, context: Any) -> None:
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: object, model_input: pd.DataFrame, params: dict[str, str] | None = None
    ) -> np.ndarray:
        x = encode_frame(model_input, self.bundle.spec)
        return np.asarray(1.0 / (1.0 + np.exp(-self.bundle.log_odds(x))))


mlflow.models.set_model(RiskscreenModel())
