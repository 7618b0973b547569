"""The one place that maps URI schemes to providers."""

from __future__ import annotations

from .errors import UnsupportedSchemeError
from .provider import Provider, ProviderFactory, Source
from .providers.gcs import GCSProvider
from .providers.hf import HFProvider
from .providers.http import HTTPProvider
from .providers.local import LocalProvider, PVCProvider
from .providers.s3 import S3Provider
from .settings import StorageSettings

#: scheme -> provider factory; ``""`` is a plain local path.
PROVIDERS: dict[str, ProviderFactory] = {
    "s3": S3Provider,
    "gs": GCSProvider,
    "http": HTTPProvider,
    "https": HTTPProvider,
    "hf": HFProvider,
    "pvc": PVCProvider,
    "file": LocalProvider,
    "": LocalProvider,
}


def scheme_of(uri: str) -> str:
    """``'s3'`` for ``s3://...``; ``''`` for a plain path."""
    scheme, sep, _ = uri.partition("://")
    return scheme.lower() if sep else ""


class Registry:
    """Builds each provider once per settings object and opens sources with it."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self._providers: dict[ProviderFactory, Provider] = {}

    def open(self, uri: str) -> Source:
        scheme = scheme_of(uri)
        factory = PROVIDERS.get(scheme)
        if factory is None:
            known = ", ".join(f"{s}://" for s in sorted(PROVIDERS) if s)
            raise UnsupportedSchemeError(f"unsupported scheme {scheme!r} (supported: {known})")
        provider = self._providers.get(factory)
        if provider is None:
            provider = self._providers[factory] = factory(self.settings)
        return provider.open(uri)

    def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            provider.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
