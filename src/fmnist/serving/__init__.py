"""Online and batch serving: input preprocessing, unknown detection and the service layers."""
