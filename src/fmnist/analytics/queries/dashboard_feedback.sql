-- Labelled feedback and correct answers per hour of the prediction, model version and rollout
-- arm (an 'unknown' answer counts as wrong; items outside the ten classes excluded; since the parameter "since").
SELECT
  TIMESTAMP_TRUNC(e.time, HOUR) AS hour,
  e.model_version,
  COALESCE(NULLIF(e.arm, ''), 'default') AS rollout_arm,
  COUNT(*) AS labelled,
  COUNTIF(f.predicted_class = f.label_name) AS correct
FROM feedback_events AS f
JOIN prediction_events AS e ON e.request_id = f.request_id
WHERE f.label IS NOT NULL AND e.time >= @since
GROUP BY hour, e.model_version, rollout_arm
ORDER BY hour, e.model_version, rollout_arm
