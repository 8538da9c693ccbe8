"""Models: nn.Modules that own their loss and decoding."""
