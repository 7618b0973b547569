"""The XGBoost runtime: a Booster saved as JSON, UBJSON or the legacy binary format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xgboost as xgb

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.model import Headers, Model
from kserve_stack_runtimes.predictors import find_model_file, input_array

EXTENSIONS = (".json", ".ubj", ".bst", ".model")


class XGBoostModel(Model):
    """Serves an XGBoost Booster; ``nthread`` threads per prediction."""

    platform = "xgboost"

    def __init__(self, name: str, model_dir: str | Path, nthread: int = 1) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread
        self._booster: Any = None

    def load(self) -> bool:
        path = find_model_file(self.model_dir, EXTENSIONS)
        booster = xgb.Booster(params={"nthread": self.nthread})
        try:
            # From memory, xgboost tells JSON from UBJSON by content: ".bst" needs no guess.
            booster.load_model(bytearray(path.read_bytes()))
        except xgb.core.XGBoostError as exc:
            raise ValueError(f"{path} is not an XGBoost model: {exc}") from None
        self._booster = booster
        self.ready = True
        return True

    def predict(self, payload: Any, headers: Headers) -> Any:
        x = input_array(payload)
        expected = self._booster.num_features()
        if x.ndim != 2 or x.shape[1] != expected:
            raise InvalidInputError(
                f"The model expects a batch of shape [N, {expected}], got {list(x.shape)}."
            )
        try:
            return self._booster.predict(xgb.DMatrix(x, nthread=self.nthread))
        except (xgb.core.XGBoostError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"The model rejected the input: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
