-- Predictions per minute, model version and predicted class.
SELECT
  TIMESTAMP_TRUNC(time, MINUTE) AS minute,
  model_version,
  predicted_class,
  COUNT(*) AS predictions
FROM prediction_events
GROUP BY minute, model_version, predicted_class
ORDER BY minute, model_version, predicted_class
