"""Offline training: dataset readers, the procedural dataset, the flow cache, training, evaluation."""
