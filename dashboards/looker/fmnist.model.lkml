# The fmnist model: predictions and feedback in BigQuery (profile `gcp`; the tables are created by
# fmnist.analytics.tables from src/fmnist/analytics/schemas/*.json). Checked by
# tests/infra/test_looker.py; see dashboards/README.md.
connection: "fmnist_bigquery"
label: "fmnist"

include: "/views/*.view.lkml"
include: "/*.dashboard.lookml"

# The analytics consumer writes continuously; an hour of cache is fresh enough for trends.
datagroup: fmnist_hourly {
  sql_trigger: SELECT TIMESTAMP_TRUNC(CURRENT_TIMESTAMP(), HOUR) ;;
  max_cache_age: "1 hour"
}

# The drift table is rebuilt once a day (its grain is a day).
datagroup: fmnist_daily {
  sql_trigger: SELECT CURRENT_DATE() ;;
  max_cache_age: "24 hours"
}

persist_with: fmnist_hourly

explore: prediction_events {
  label: "Predictions"
  description: "Every prediction served, with its feedback when there is one"

  # The tables grow by the request: a query without a date range would scan all of them.
  conditionally_filter: {
    filters: [prediction_events.predicted_date: "28 days"]
    unless: [prediction_events.predicted_week, prediction_events.predicted_month]
  }

  join: feedback_events {
    type: left_outer
    relationship: one_to_one
    sql_on: ${prediction_events.request_id} = ${feedback_events.request_id} ;;
  }
}

explore: feedback_events {
  label: "Feedback"
  description: "Feedback (true labels) with the prediction each is about: live accuracy"

  conditionally_filter: {
    filters: [feedback_events.feedback_date: "28 days"]
    unless: [feedback_events.feedback_week, feedback_events.feedback_month]
  }

  join: prediction_events {
    type: left_outer
    relationship: one_to_one
    sql_on: ${feedback_events.request_id} = ${prediction_events.request_id} ;;
  }
}

explore: class_mix_drift {
  label: "Prediction-mix drift"
  description: "Each day's class mix of a model version against its reference window"
  persist_with: fmnist_daily
}
