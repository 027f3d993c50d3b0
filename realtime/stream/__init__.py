"""The live stream: flow and net inputs, bounded hand-overs, fusion and smoothing, the pipeline and multi-stream serving."""
