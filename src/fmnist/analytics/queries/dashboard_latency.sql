-- Latency quantiles (p50, p95) per hour, all routes and versions together (since the parameter "since").
SELECT
  TIMESTAMP_TRUNC(time, HOUR) AS hour,
  COUNT(*) AS predictions,
  ROUND(APPROX_QUANTILES(latency_ms, 20)[OFFSET(10)], 3) AS p50_ms,
  ROUND(APPROX_QUANTILES(latency_ms, 20)[OFFSET(19)], 3) AS p95_ms
FROM prediction_events
WHERE time >= @since
GROUP BY hour
ORDER BY hour
