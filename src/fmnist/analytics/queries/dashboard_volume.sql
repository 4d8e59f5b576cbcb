-- Predictions and 'unknown' answers per hour, model version and rollout arm (since the parameter "since").
SELECT
  TIMESTAMP_TRUNC(time, HOUR) AS hour,
  model_version,
  COALESCE(NULLIF(arm, ''), 'default') AS rollout_arm,
  COUNT(*) AS predictions,
  COUNTIF(predicted_class = 'unknown') AS unknown
FROM prediction_events
WHERE time >= @since
GROUP BY hour, model_version, rollout_arm
ORDER BY hour, model_version, rollout_arm
