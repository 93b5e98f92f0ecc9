"""One `nn.Module` per block; each takes and returns tensors only."""
