"""Data layer: sources and checksums, the IDX reader, validation, snapshots and loaders."""
