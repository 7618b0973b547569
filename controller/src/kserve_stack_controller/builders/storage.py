"""Where the model comes from: the storage initializer as an init container for a
``storageUri``, or a PersistentVolumeClaim mounted read-only for ``pvc://``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kserve_stack_controller.config import StorageInitializerConfig
from kserve_stack_controller.constants import (
    MODEL_MOUNT_PATH,
    MODEL_VOLUME,
    STORAGE_INITIALIZER_NAME,
)
from kserve_stack_controller.errors import InvalidSpecError

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class ModelStorage:
    """What the pod needs for its model: volumes, init containers, the runtime's mounts."""

    volumes: list[JsonDict]
    init_containers: list[JsonDict]
    mounts: list[JsonDict]


def parse_pvc_uri(uri: str) -> tuple[str, str]:
    """``pvc://CLAIM/PATH`` → (claim, path); the path may be empty."""
    rest = uri.removeprefix("pvc://")
    claim, _, path = rest.partition("/")
    if not claim:
        raise InvalidSpecError(f"storageUri {uri!r}: expected pvc://CLAIM[/PATH]")
    return claim, path.strip("/")


def model_storage(storage_uri: str | None, config: StorageInitializerConfig) -> ModelStorage:
    """The pod parts that bring ``storage_uri`` to /mnt/models (nothing for no URI)."""
    if not storage_uri:
        return ModelStorage([], [], [])
    if storage_uri.startswith("pvc://") and config.enable_direct_pvc_volume_mount:
        claim, path = parse_pvc_uri(storage_uri)
        volume = {
            "name": MODEL_VOLUME,
            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
        }
        mount: JsonDict = {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH, "readOnly": True}
        if path:
            mount["subPath"] = path
        return ModelStorage([volume], [], [mount])

    empty_dir: JsonDict = {}
    if config.cache_size:
        empty_dir["sizeLimit"] = config.cache_size
    volumes: list[JsonDict] = [{"name": MODEL_VOLUME, "emptyDir": empty_dir}]
    init_mounts: list[JsonDict] = [{"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH}]
    if storage_uri.startswith("pvc://"):
        # Copy mode: mount the claim for the initializer under its pvc root.
        claim, _ = parse_pvc_uri(storage_uri)
        volumes.append(
            {
                "name": "kserve-pvc-source",
                "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
            }
        )
        init_mounts.append(
            {"name": "kserve-pvc-source", "mountPath": f"/mnt/pvc/{claim}", "readOnly": True}
        )
    init = {
        "name": STORAGE_INITIALIZER_NAME,
        "image": config.image,
        "command": list(config.command),
        "args": [storage_uri, MODEL_MOUNT_PATH],
        "resources": {
            "requests": {"cpu": config.cpu_request, "memory": config.memory_request},
            "limits": {"cpu": config.cpu_limit, "memory": config.memory_limit},
        },
        "volumeMounts": init_mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    mount = {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH, "readOnly": True}
    return ModelStorage(volumes, [init], [mount])
