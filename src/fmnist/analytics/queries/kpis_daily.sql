-- Daily KPIs: volume, p95 latency, unknown rate, labelled feedback and live accuracy (by the
-- day of the prediction).
SELECT
  p.day,
  p.predictions,
  p.latency_p95_ms,
  p.unknown_rate,
  COALESCE(f.labelled, 0) AS labelled,
  f.accuracy
FROM (
  SELECT
    DATE(time) AS day,
    COUNT(*) AS predictions,
    ROUND(APPROX_QUANTILES(latency_ms, 20)[OFFSET(19)], 3) AS latency_p95_ms,
    ROUND(COUNTIF(predicted_class = 'unknown') / COUNT(*), 4) AS unknown_rate
  FROM prediction_events
  GROUP BY day
) AS p
LEFT JOIN (
  SELECT
    DATE(e.time) AS day,
    COUNT(*) AS labelled,
    ROUND(AVG(IF(f.predicted_class = f.label_name, 1.0, 0.0)), 4) AS accuracy
  FROM feedback_events AS f
  JOIN prediction_events AS e ON e.request_id = f.request_id
  WHERE f.label IS NOT NULL
  GROUP BY day
) AS f ON f.day = p.day
ORDER BY p.day
