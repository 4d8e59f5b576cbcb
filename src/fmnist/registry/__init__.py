"""Model registry: exported artifacts (ONNX) and their bookkeeping."""
