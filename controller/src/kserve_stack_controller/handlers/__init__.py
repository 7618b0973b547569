"""kopf handlers, thin: each gathers its inputs and calls the Reconciler."""
