"""Datasets: corpus index, face-crop packs, self-blended fakes, identity-disjoint splits."""
