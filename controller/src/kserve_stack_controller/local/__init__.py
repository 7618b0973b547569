"""The local mode: one InferenceService run on this machine, no cluster."""
