# One row per prediction served (API, web UI, batch job): the prediction log, relayed as
# CloudEvents to Pub/Sub (topic "predictions") and written to BigQuery by the analytics consumer.
# Columns: src/fmnist/analytics/schemas/prediction_events.json (tests/infra/test_looker.py
# checks every ${TABLE}.column against it).
view: prediction_events {
  sql_table_name: `@{bigquery_dataset}.prediction_events` ;;

  # ---- keys --------------------------------------------------------------------------------

  dimension: event_id {
    primary_key: yes
    hidden: yes
    type: string
    description: "CloudEvents id: prediction:<request_id>"
    sql: ${TABLE}.event_id ;;
  }

  dimension: request_id {
    type: string
    description: "The request id of the API (X-Request-ID); joins the feedback"
    sql: ${TABLE}.request_id ;;
  }

  # ---- when ---------------------------------------------------------------------------------

  dimension_group: predicted {
    type: time
    description: "When the prediction was made (UTC)"
    timeframes: [raw, time, minute5, minute15, hour, date, week, month]
    datatype: timestamp
    sql: ${TABLE}.time ;;
  }

  # ---- which model --------------------------------------------------------------------------

  dimension: model_name {
    type: string
    description: "Registered model that answered (fmnist, fmnist-photos, ...)"
    sql: ${TABLE}.model_name ;;
  }

  dimension: model_version {
    type: number
    value_format_name: id
    sql: ${TABLE}.model_version ;;
  }

  dimension: model {
    type: string
    description: "Model name and version, e.g. fmnist v3"
    sql: CONCAT(${model_name}, ' v', CAST(${model_version} AS STRING)) ;;
  }

  dimension: model_alias {
    type: string
    description: "The alias the request resolved (champion, challenger); null for a pinned version"
    sql: ${TABLE}.model_alias ;;
  }

  dimension: arm {
    type: string
    description: "Rollout arm of an A/B or shadow experiment (docs/rollout.md); null outside one"
    sql: ${TABLE}.arm ;;
  }

  # ---- the request --------------------------------------------------------------------------

  dimension: input_kind {
    type: string
    description: "How the input arrived (pixels, image file, ...)"
    sql: ${TABLE}.input_kind ;;
  }

  dimension: route {
    type: string
    description: "API route (/v1/predict, /v1/predict/batch) or the batch job"
    sql: ${TABLE}.route ;;
  }

  # ---- the answer ---------------------------------------------------------------------------

  dimension: predicted_class {
    type: string
    description: "Class name answered, or 'unknown' when the model abstained"
    sql: ${TABLE}.predicted_class ;;
  }

  dimension: is_unknown {
    type: yesno
    description: "The model answered 'unknown' (out of distribution or not confident enough)"
    sql: ${TABLE}.predicted_class = 'unknown' ;;
  }

  dimension: confidence {
    type: number
    description: "Calibrated probability of the top class"
    value_format_name: decimal_3
    sql: ${TABLE}.confidence ;;
  }

  dimension: confidence_tier {
    type: tier
    tiers: [0.5, 0.7, 0.9, 0.99]
    style: interval
    sql: ${confidence} ;;
  }

  dimension: latency_ms {
    type: number
    description: "Server-side time to answer the request, in milliseconds"
    value_format_name: decimal_2
    sql: ${TABLE}.latency_ms ;;
  }

  dimension: latency_tier {
    type: tier
    tiers: [1, 2, 5, 10, 20, 50, 100, 500]
    style: relational
    sql: ${latency_ms} ;;
  }

  # ---- cost ---------------------------------------------------------------------------------

  parameter: cost_per_prediction_usd {
    type: number
    label: "Cost per prediction (USD)"
    description: "Overrides the cost of one prediction; empty: the project constant cost_per_prediction_usd (docs/gcp.md, 'Cost per prediction')"
  }

  # ---- measures -----------------------------------------------------------------------------

  measure: count {
    type: count
    label: "Predictions"
    drill_fields: [detail*]
  }

  measure: unknown_count {
    type: count
    label: "Unknown answers"
    filters: [is_unknown: "yes"]
  }

  measure: unknown_rate {
    type: number
    description: "Share of predictions answered 'unknown'"
    value_format_name: percent_2
    sql: SAFE_DIVIDE(${unknown_count}, ${count}) ;;
  }

  measure: share_of_predictions {
    type: percent_of_total
    description: "This row's share of the predictions (volume by class, by model, ...)"
    sql: ${count} ;;
  }

  measure: average_confidence {
    type: average
    value_format_name: decimal_3
    sql: ${confidence} ;;
  }

  measure: median_confidence {
    type: median
    value_format_name: decimal_3
    sql: ${confidence} ;;
  }

  measure: average_latency_ms {
    type: average
    value_format_name: decimal_2
    sql: ${latency_ms} ;;
  }

  measure: latency_p50_ms {
    type: median
    label: "Latency p50 (ms)"
    value_format_name: decimal_2
    sql: ${latency_ms} ;;
  }

  measure: latency_p95_ms {
    type: percentile
    percentile: 95
    label: "Latency p95 (ms)"
    value_format_name: decimal_2
    sql: ${latency_ms} ;;
  }

  measure: latency_p99_ms {
    type: percentile
    percentile: 99
    label: "Latency p99 (ms)"
    value_format_name: decimal_2
    sql: ${latency_ms} ;;
  }

  measure: model_versions {
    type: count_distinct
    description: "Distinct model versions that answered"
    sql: ${model} ;;
  }

  measure: feedback_rate {
    type: number
    description: "Share of predictions that received feedback (needs the feedback_events join)"
    value_format_name: percent_2
    sql: SAFE_DIVIDE(${feedback_events.count}, ${count}) ;;
  }

  measure: cost_per_prediction {
    type: number
    label: "Cost per prediction (USD)"
    description: "The parameter cost_per_prediction_usd, else the project constant"
    value_format: "$0.0000000"
    sql: COALESCE(SAFE_CAST(NULLIF('{% parameter cost_per_prediction_usd %}', '') AS FLOAT64), @{cost_per_prediction_usd}) ;;
  }

  measure: estimated_cost_usd {
    type: number
    label: "Estimated cost (USD)"
    description: "Predictions x cost per prediction"
    value_format_name: usd
    sql: ${count} * ${cost_per_prediction} ;;
  }

  set: detail {
    fields: [predicted_time, request_id, model, arm, input_kind, route, predicted_class, confidence, latency_ms]
  }
}
