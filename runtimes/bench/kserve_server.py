"""KServe's own model server (PyPI kserve) serving a scikit-learn model, for the benchmark.

KServe's sklearnserver is not on PyPI; this is the same thing on KServe's public API: a
``kserve.Model`` that loads the joblib file and predicts with KServe's own request/response
helpers, started by ``kserve.ModelServer``. Run with the python of .bench/kserve-venv.
"""

import argparse

import joblib
import kserve
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearn(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self._model = joblib.load(self.path)
        self.ready = True
        return True

    def predict(self, payload, headers=None):  # type: ignore[no-untyped-def]
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    kserve.ModelServer(workers=1).start([SKLearn(args.model_name, args.model_path)])
