-- Accuracy on labelled feedback per model version (items outside the ten classes excluded).
SELECT
  model_version,
  COUNT(*) AS labelled,
  ROUND(AVG(IF(predicted_class = label_name, 1.0, 0.0)), 4) AS accuracy
FROM feedback_events
WHERE label IS NOT NULL
GROUP BY model_version
ORDER BY model_version
