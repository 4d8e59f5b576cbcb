# Operations: is the service answering, fast, confidently, and on the traffic it was built for?
# Fields are checked against the model by tests/infra/test_looker.py.
---
- dashboard: fmnist_operations
  title: "fmnist: operations"
  description: "Prediction volume, latency p50/p95/p99, 'unknown' rate, confidence and prediction-mix drift from the BigQuery prediction log"
  layout: newspaper
  preferred_viewer: dashboards-next
  refresh: 15 minutes
  filters:
  - name: date
    title: Date
    type: date_filter
    default_value: 7 days
    allow_multiple_values: true
    required: false
  - name: model
    title: Model
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config:
      type: tag_list
      display: popover
    model: fmnist
    explore: prediction_events
    field: prediction_events.model_name
  - name: input_kind
    title: Input kind
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config:
      type: checkboxes
      display: popover
    model: fmnist
    explore: prediction_events
    field: prediction_events.input_kind

  elements:
  - name: predictions
    title: Predictions
    model: fmnist
    explore: prediction_events
    type: single_value
    fields: [prediction_events.count]
    limit: 1
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 0
    col: 0
    width: 6
    height: 3

  - name: latency_p95
    title: Latency p95 (ms)
    note_text: "Server-side; the SLO target is in docs/serving.md"
    model: fmnist
    explore: prediction_events
    type: single_value
    fields: [prediction_events.latency_p95_ms]
    limit: 1
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 0
    col: 6
    width: 6
    height: 3

  - name: unknown_rate
    title: "'Unknown' rate"
    model: fmnist
    explore: prediction_events
    type: single_value
    fields: [prediction_events.unknown_rate]
    limit: 1
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 0
    col: 12
    width: 6
    height: 3

  - name: drift_tvd
    title: Prediction-mix drift (TVD)
    note_text: "Total variation distance of the daily class mix against each version's first days; 0 = unchanged"
    model: fmnist
    explore: class_mix_drift
    type: single_value
    fields: [class_mix_drift.total_variation_distance]
    limit: 1
    listen:
      date: class_mix_drift.day_date
      model: class_mix_drift.model_name
    row: 0
    col: 18
    width: 6
    height: 3

  - name: volume
    title: Predictions per hour, by model
    model: fmnist
    explore: prediction_events
    type: looker_line
    fields: [prediction_events.predicted_hour, prediction_events.model, prediction_events.count]
    pivots: [prediction_events.model]
    fill_fields: [prediction_events.predicted_hour]
    sorts: [prediction_events.predicted_hour desc, prediction_events.model]
    limit: 500
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 3
    col: 0
    width: 12
    height: 7

  - name: latency
    title: Latency p50 / p95 / p99 per hour (ms)
    model: fmnist
    explore: prediction_events
    type: looker_line
    fields: [prediction_events.predicted_hour, prediction_events.latency_p50_ms, prediction_events.latency_p95_ms,
      prediction_events.latency_p99_ms]
    fill_fields: [prediction_events.predicted_hour]
    sorts: [prediction_events.predicted_hour desc]
    limit: 500
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 3
    col: 12
    width: 12
    height: 7

  - name: unknown_rate_trend
    title: "'Unknown' rate per hour, by input kind"
    model: fmnist
    explore: prediction_events
    type: looker_line
    fields: [prediction_events.predicted_hour, prediction_events.input_kind, prediction_events.unknown_rate]
    pivots: [prediction_events.input_kind]
    fill_fields: [prediction_events.predicted_hour]
    sorts: [prediction_events.predicted_hour desc, prediction_events.input_kind]
    limit: 500
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 10
    col: 0
    width: 12
    height: 7

  - name: confidence_trend
    title: Average confidence per hour, by model
    model: fmnist
    explore: prediction_events
    type: looker_line
    fields: [prediction_events.predicted_hour, prediction_events.model, prediction_events.average_confidence]
    pivots: [prediction_events.model]
    fill_fields: [prediction_events.predicted_hour]
    sorts: [prediction_events.predicted_hour desc, prediction_events.model]
    limit: 500
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 10
    col: 12
    width: 12
    height: 7

  - name: drift_trend
    title: Prediction-mix drift per day (TVD and PSI)
    note_text: "PSI above 0.1 is worth a look, above 0.25 a shift; the drift monitor's own tests alert through Cloud Monitoring"
    model: fmnist
    explore: class_mix_drift
    type: looker_line
    fields: [class_mix_drift.day_date, class_mix_drift.total_variation_distance, class_mix_drift.population_stability_index]
    fill_fields: [class_mix_drift.day_date]
    sorts: [class_mix_drift.day_date desc]
    limit: 500
    listen:
      date: class_mix_drift.day_date
      model: class_mix_drift.model_name
    row: 17
    col: 0
    width: 12
    height: 7

  - name: drift_by_class
    title: Class share against the reference mix
    model: fmnist
    explore: class_mix_drift
    type: looker_grid
    fields: [class_mix_drift.predicted_class, class_mix_drift.class_share, class_mix_drift.reference_class_share,
      class_mix_drift.max_class_shift, class_mix_drift.predictions]
    filters:
      class_mix_drift.in_reference: "No"
    sorts: [class_mix_drift.max_class_shift desc]
    limit: 50
    listen:
      date: class_mix_drift.day_date
      model: class_mix_drift.model_name
    row: 17
    col: 12
    width: 12
    height: 7

  - name: by_route
    title: Volume and latency by route and input kind
    model: fmnist
    explore: prediction_events
    type: looker_grid
    fields: [prediction_events.route, prediction_events.input_kind, prediction_events.count, prediction_events.latency_p50_ms,
      prediction_events.latency_p95_ms, prediction_events.unknown_rate]
    sorts: [prediction_events.count desc]
    limit: 100
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      input_kind: prediction_events.input_kind
    row: 24
    col: 0
    width: 16
    height: 6

  - name: errors_note
    type: text
    title_text: HTTP errors and availability
    body_text: "The log in BigQuery holds answered predictions only. Request errors (4xx/5xx), availability and the error budget are in Cloud Monitoring (Cloud Run request metrics) and in the Grafana dashboard fmnist-service-health (dashboards/grafana/)."
    row: 24
    col: 16
    width: 8
    height: 6
