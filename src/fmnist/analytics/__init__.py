"""Analytics written once: BigQuery JSON schemas and BigQuery-dialect named queries, run
through the analytics port (DuckDB locally via sqlglot, BigQuery on GCP)."""
