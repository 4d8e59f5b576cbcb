-- Confidence quantiles (p10, p50, p90) per model version.
SELECT
  model_version,
  COUNT(*) AS predictions,
  ROUND(APPROX_QUANTILES(confidence, 10)[OFFSET(1)], 4) AS p10,
  ROUND(APPROX_QUANTILES(confidence, 10)[OFFSET(5)], 4) AS p50,
  ROUND(APPROX_QUANTILES(confidence, 10)[OFFSET(9)], 4) AS p90
FROM prediction_events
GROUP BY model_version
ORDER BY model_version
