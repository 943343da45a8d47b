"""The field's reference metric definitions: each function takes plain tensors/arrays."""
