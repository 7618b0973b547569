"""Names the controller writes and reads: labels, annotations, field manager, API versions."""

from __future__ import annotations

GROUP = "serving.kserve.io"
ISVC_API_VERSION = "serving.kserve.io/v1beta1"
RUNTIME_API_VERSION = "serving.kserve.io/v1alpha1"

#: The one field manager of every server-side apply the controller makes.
FIELD_MANAGER = "kserve-stack-controller"

# Labels (KServe's names, so tools that select KServe pods select ours too).
LABEL_ISVC = "serving.kserve.io/inferenceservice"
LABEL_COMPONENT = "component"
LABEL_APP = "app"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "kserve-stack-controller"
LABEL_REVISION_ROLE = "serving.kserve.io/revision-role"

# Annotations on the InferenceService.
ANN_AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
ANN_STOP = "serving.kserve.io/stop"
ANN_METRIC_QUERY = "serving.kserve.io/metric-query"
ANN_KEDA_SERVER = "serving.kserve.io/keda-prometheus-server"
# Annotations the controller writes on children.
ANN_REVISION = "serving.kserve.io/revision"
ANN_RUNTIME = "serving.kserve.io/servingruntime"

#: Where the storage initializer puts the model and where the runtime reads it.
MODEL_MOUNT_PATH = "/mnt/models"
PVC_MOUNT_ROOT = "/mnt/pvc"
MODEL_VOLUME = "kserve-provision-location"
STORAGE_INITIALIZER_NAME = "storage-initializer"
MAIN_CONTAINER = "kserve-container"

COMPONENTS = ("predictor", "transformer", "explainer")

# The activator (scale from zero): the route names the target and the hold timeout.
#: ``NAMESPACE/SERVICE`` of the component's Service the request is for.
HEADER_ACTIVATOR_TARGET = "x-kserve-stack-target"
#: Seconds to hold the request while the target has no ready endpoint.
HEADER_ACTIVATOR_HOLD_TIMEOUT = "x-kserve-stack-hold-timeout"
#: The activator's gauge of held requests, read by the ScaledObject's activation trigger.
ACTIVATOR_PENDING_METRIC = "kserve_stack_activator_pending_requests"
