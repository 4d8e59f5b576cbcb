-- The whole period at once: volume, first and last prediction, unknown rate, latency (since the parameter "since").
SELECT
  COUNT(*) AS predictions,
  MIN(time) AS first_time,
  MAX(time) AS last_time,
  COUNT(DISTINCT model_version) AS model_versions,
  ROUND(COUNTIF(predicted_class = 'unknown') / COUNT(*), 4) AS unknown_rate,
  ROUND(APPROX_QUANTILES(latency_ms, 20)[OFFSET(10)], 3) AS p50_ms,
  ROUND(APPROX_QUANTILES(latency_ms, 20)[OFFSET(19)], 3) AS p95_ms
FROM prediction_events
WHERE time >= @since
