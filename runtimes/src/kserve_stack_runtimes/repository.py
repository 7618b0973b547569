"""The model repository: the served models by name, and loading / unloading them at run time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kserve_stack_runtimes.errors import InvalidInputError, ModelNotFoundError, ModelNotReadyError
from kserve_stack_runtimes.model import Model

log = logging.getLogger(__name__)

#: Builds a (not yet loaded) model for a name, or returns None when it knows no such model.
ModelFactory = Callable[[str], Model | None]


class ModelRepository:
    """Holds the models a server serves; the V2 repository extension loads and unloads them."""

    def __init__(self, factory: ModelFactory | None = None) -> None:
        self._models: dict[str, Model] = {}
        self._factory = factory

    def add(self, model: Model) -> None:
        """Serve ``model`` (replacing one of the same name)."""
        self._models[model.name] = model

    def names(self) -> list[str]:
        return list(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def models(self) -> list[Model]:
        return list(self._models.values())

    def get(self, name: str) -> Model:
        """The model called ``name`` (ModelNotFoundError otherwise)."""
        model = self._models.get(name)
        if model is None:
            raise ModelNotFoundError(name)
        return model

    def get_ready(self, name: str, version: str | None = None) -> Model:
        """The model called ``name``, checked ready (404 / 503 otherwise)."""
        model = self._models.get(name)
        if model is None or (version and model.version and version != model.version):
            raise ModelNotFoundError(name, version)
        if not model.ready:
            raise ModelNotReadyError(name)
        return model

    def all_ready(self) -> bool:
        return bool(self._models) and all(m.ready for m in self._models.values())

    async def load(self, name: str, parameters: Mapping[str, Any] | None = None) -> Model:
        """(Re)load ``name``: a known model reloads, an unknown one comes from the factory.

        ``parameters`` are those of the load request (Triton's ``config`` and ``file:...``
        overrides): none is supported, so a request with any is refused rather than loaded
        without what it asked for.
        """
        if parameters:
            raise InvalidInputError(
                f"Loading model {name!r} with parameters ({', '.join(sorted(parameters))}) is "
                "not supported: models load from their directory under --model_dir, without "
                "config or file overrides."
            )
        model = self._models.get(name)
        if model is None:
            if self._factory is None:
                raise ModelNotFoundError(name)
            try:
                model = self._factory(name)
            except (OSError, ValueError) as exc:
                raise InvalidInputError(f"Model {name!r} could not be built: {exc}") from exc
            if model is None:
                raise ModelNotFoundError(name)
        log.info("loading model %s", name)
        try:
            ready = await model.run_load()
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"Model {name!r} failed to load: {exc}") from exc
        if not ready:
            raise ModelNotReadyError(name)
        self._models[name] = model
        log.info("model %s is ready", name)
        return model

    def unload(self, name: str) -> None:
        """Unload ``name`` and stop serving it."""
        model = self.get(name)
        model.unload()
        model.ready = False
        del self._models[name]
        log.info("model %s unloaded", name)

    def index(self) -> list[dict[str, Any]]:
        """The V2 repository index: name, version, state of every model."""
        return [
            {
                "name": m.name,
                **({"version": m.version} if m.version else {}),
                "state": "READY" if m.ready else "UNAVAILABLE",
                "reason": "" if m.ready else "not loaded",
            }
            for m in self._models.values()
        ]
