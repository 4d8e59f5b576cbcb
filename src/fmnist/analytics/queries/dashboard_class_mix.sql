-- Predicted-class mix per model version (since the parameter "since").
SELECT
  model_version,
  predicted_class,
  COUNT(*) AS predictions
FROM prediction_events
WHERE time >= @since
GROUP BY model_version, predicted_class
ORDER BY model_version, predicted_class
