#!/usr/bin/env bash
# Delete the kind clusters created by hack/kind/up.sh.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  echo "Usage: hack/kind/down.sh [-h|--help]"
  echo "Deletes the kind clusters 'kserve-stack' and 'kserve-stack-gpu' if they exist."
  exit 0
fi
KIND="${KIND:-kind}"
command -v "$KIND" >/dev/null || { echo "[kind] kind is not installed: nothing to delete" >&2; exit 0; }
for name in kserve-stack kserve-stack-gpu; do
  if "$KIND" get clusters 2>/dev/null | grep -qx "$name"; then
    "$KIND" delete cluster --name "$name"
  fi
done
