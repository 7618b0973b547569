"""The LightGBM runtime: a Booster saved as text (``.txt``) or ``.bst``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.model import Headers, Model
from kserve_stack_runtimes.predictors import find_model_file, input_array

EXTENSIONS = (".txt", ".bst")


class LightGBMModel(Model):
    """Serves a LightGBM Booster; ``nthread`` threads per prediction."""

    platform = "lightgbm"

    def __init__(self, name: str, model_dir: str | Path, nthread: int = 1) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread
        self._booster: Any = None

    def load(self) -> bool:
        path = find_model_file(self.model_dir, EXTENSIONS)
        try:
            self._booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ValueError(f"{path} is not a LightGBM model: {exc}") from None
        self.ready = True
        return True

    def predict(self, payload: Any, headers: Headers) -> Any:
        x = input_array(payload)
        try:
            return self._booster.predict(x, num_threads=self.nthread)
        except (lgb.basic.LightGBMError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"The model rejected the input: {exc}") from None
