"""Neural building blocks: CRF, encoders, character features, pooling."""
