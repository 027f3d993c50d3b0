"""The nets and what runs them: architectures, checkpoints and where models live, engines, ONNX export, int8, ImageNet weights, familiarity."""
