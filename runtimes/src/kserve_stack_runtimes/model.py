"""The model lifecycle: load, then preprocess -> predict -> postprocess (and explain) per request.

Subclass :class:`Model` and override what you need; each method may be a plain ``def`` or an
``async def``. Plain methods run on the event loop, so keep them short (a scikit-learn predict on a
small batch is fine); for long blocking work, write ``async def`` and ``await
asyncio.to_thread(...)``.

What a stage receives and returns:

* ``payload`` is the decoded request: a ``dict`` for V1 (``{"instances": [...]}``) or an
  :class:`~kserve_stack_runtimes.protocol.v2.InferRequest` for V2 REST and gRPC.
* ``headers`` are the request's HTTP headers (gRPC metadata), lower-cased, including
  ``x-request-id``.
* ``predict`` may return a numpy array, a list, a dict of arrays (named outputs), an
  ``InferResponse`` or, for V1, a ready ``{"predictions": ...}`` dict. The data plane encodes it for
  the protocol the request came in on.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from kserve_stack_runtimes.errors import NotImplementedByModelError

Headers = dict[str, str]

STAGES = ("preprocess", "predict", "postprocess", "explain")


class Model:
    """Base class of every served model (predictors, transformers and custom models)."""

    #: Reported by V2 model metadata as ``platform``.
    platform: str = "kserve-stack-custom"

    def __init__(self, name: str) -> None:
        self.name = name
        self.version: str | None = None
        self.ready = False
        self._is_async = {
            stage: inspect.iscoroutinefunction(getattr(self, stage)) for stage in STAGES
        }
        self._is_async["load"] = inspect.iscoroutinefunction(self.load)

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> bool:
        """Load weights, open clients, warm up. Return True (or set ``self.ready``) when done."""
        self.ready = True
        return True

    def unload(self) -> None:
        """Release what :meth:`load` took. The repository marks the model not ready."""
        self.ready = False

    def preprocess(self, payload: Any, headers: Headers) -> Any:
        """Turn the request payload into what :meth:`predict` takes (identity by default)."""
        return payload

    def predict(self, payload: Any, headers: Headers) -> Any:
        """Run the model. Required for predictors; transformers forward to a predictor host."""
        raise NotImplementedByModelError(f"Model {self.name!r} does not implement predict.")

    def postprocess(self, result: Any, headers: Headers) -> Any:
        """Turn what :meth:`predict` returned into the response (identity by default)."""
        return result

    def explain(self, payload: Any, headers: Headers) -> Any:
        """Explain a prediction. Not implemented unless a subclass overrides it."""
        raise NotImplementedByModelError(f"Model {self.name!r} does not implement explain.")

    def metadata(self) -> dict[str, Any]:
        """V2 model metadata; override to describe inputs and outputs."""
        return {
            "name": self.name,
            "versions": [self.version] if self.version else [],
            "platform": self.platform,
            "inputs": [],
            "outputs": [],
        }

    # -- called by the data plane -----------------------------------------------------------
    async def run_load(self) -> bool:
        """Call :meth:`load` (sync or async) and settle ``ready``."""
        load: Any = self.load
        if self._is_async["load"]:
            result: Any = await _in_task(load())
        else:
            # Loading is blocking I/O: keep the event loop (liveness, metrics) answering.
            result = await asyncio.to_thread(self.load)
        if result is True:
            self.ready = True
        return self.ready

    async def call_stage(self, stage: str, payload: Any, headers: Headers) -> Any:
        """Call one lifecycle stage, awaiting it when it is a coroutine function."""
        result = getattr(self, stage)(payload, headers)
        if self._is_async[stage]:
            return await _in_task(result)
        return result


def _in_task(coro: Any) -> Any:
    """``coro`` as a task when none is running (else as is), for ``await``.

    The transports run a request inline, without a task, until it first waits (see
    ``transports/inline.py``); that covers plain-function stages. An ``async def`` stage may
    need a current task (anyio, and so httpx; ``asyncio.timeout``), so it gets its own.
    """
    if asyncio.current_task() is None:
        return asyncio.ensure_future(coro)
    return coro
