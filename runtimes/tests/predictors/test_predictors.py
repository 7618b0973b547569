"""The runtimes load each supported file format and predict; bad input is a 400-class error."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

import httpx
import joblib
import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.model import Model
from kserve_stack_runtimes.predictors import find_model_file
from kserve_stack_runtimes.predictors.lightgbm import LightGBMModel
from kserve_stack_runtimes.predictors.sklearn import SKLearnModel
from kserve_stack_runtimes.predictors.xgboost import XGBoostModel
from kserve_stack_runtimes.protocol import v2
from runtimes_support import SAMPLE, SAMPLE_CLASSES, iris_like
from sklearn.tree import DecisionTreeClassifier


def _loaded(model: Model) -> Model:
    assert asyncio.run(model.run_load()) is True
    assert model.ready
    return model


def _v2(x: list[list[float]]) -> v2.InferRequest:
    return v2.InferRequest("m", [v2.InferTensor("x", np.asarray(x, dtype=np.float32))])


@pytest.mark.parametrize("fmt", ["joblib", "pkl", "pickle"])
def test_sklearn_formats_and_proba(tmp_path: Path, fmt: str) -> None:
    x, y = iris_like()
    est = DecisionTreeClassifier(random_state=0).fit(x, y)
    if fmt == "joblib":
        joblib.dump(est, tmp_path / "model.joblib")
    else:
        (tmp_path / f"model.{fmt}").write_bytes(pickle.dumps(est))
    model = _loaded(SKLearnModel("m", tmp_path))
    assert model.predict({"instances": SAMPLE}, {}).tolist() == SAMPLE_CLASSES
    assert model.predict(_v2(SAMPLE), {}).tolist() == SAMPLE_CLASSES
    proba = _loaded(SKLearnModel("m", tmp_path, predict_proba=True)).predict(_v2(SAMPLE), {})
    assert proba.shape == (2, 3)
    assert np.argmax(proba, axis=1).tolist() == SAMPLE_CLASSES
    with pytest.raises(InvalidInputError, match="features"):
        model.predict({"instances": [[1.0, 2.0]]}, {})


@pytest.mark.parametrize("fmt", ["json", "ubj", "bst"])
def test_xgboost_formats(tmp_path: Path, fmt: str) -> None:
    x, y = iris_like()
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": 3, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=5,
    )
    if fmt == "bst":  # KServe's xgbserver name for a binary (UBJSON) booster
        (tmp_path / "model.bst").write_bytes(booster.save_raw("ubj"))
    else:
        booster.save_model(str(tmp_path / f"model.{fmt}"))
    model = _loaded(XGBoostModel("m", tmp_path, nthread=1))
    assert model.predict({"instances": SAMPLE}, {}).tolist() == SAMPLE_CLASSES
    assert model.predict(_v2(SAMPLE), {}).tolist() == SAMPLE_CLASSES
    with pytest.raises(InvalidInputError):
        model.predict({"instances": [[1.0, 2.0]]}, {})


@pytest.mark.parametrize("fmt", ["txt", "bst"])
def test_lightgbm_formats(tmp_path: Path, fmt: str) -> None:
    x, y = iris_like()
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "min_data_in_leaf": 2},
        lgb.Dataset(x, label=y),
        num_boost_round=5,
    )
    booster.save_model(str(tmp_path / f"model.{fmt}"))
    model = _loaded(LightGBMModel("m", tmp_path))
    proba = model.predict(_v2(SAMPLE), {})
    assert np.argmax(proba, axis=1).tolist() == SAMPLE_CLASSES
    with pytest.raises(InvalidInputError):
        model.predict({"instances": [[1.0, 2.0]]}, {})


def test_find_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_model_file(tmp_path / "absent", (".json",))
    with pytest.raises(FileNotFoundError, match="No model file"):
        find_model_file(tmp_path, (".json",))
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(ValueError, match="More than one"):
        find_model_file(tmp_path, (".json",))


def test_xgboost_server_from_module_entry_point(tmp_path: Path, start_server) -> None:  # type: ignore[no-untyped-def]
    x, y = iris_like()
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": 3, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=5,
    )
    booster.save_model(str(tmp_path / "model.json"))
    server = start_server(["xgboost", "--model_name=xgb", f"--model_dir={tmp_path}", "--nthread=1"])
    r = httpx.post(f"{server.url}/v1/models/xgb:predict", json={"instances": SAMPLE})
    assert r.json() == {"predictions": [float(c) for c in SAMPLE_CLASSES]}
