"""Pure builders: from an InferenceService, its runtimes and the configuration to the desired
child objects. No I/O here: every function takes plain values and returns plain values."""
