"""The model lifecycle: checkpoints loaded and warmed up, published in the registry, kept in step with the folder."""
