# Business: what is asked, how often the answers are right (from feedback), whether the traffic
# is shifting, and what it costs. Fields are checked against the model by
# tests/infra/test_looker.py.
---
- dashboard: fmnist_business
  title: "fmnist: business"
  description: "Volume by class, live accuracy from feedback, prediction-mix drift and cost per prediction"
  layout: newspaper
  preferred_viewer: dashboards-next
  refresh: 1 hour
  filters:
  - name: date
    title: Date
    type: date_filter
    default_value: 28 days
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
  - name: cost_per_prediction
    title: Cost per prediction (USD)
    type: field_filter
    default_value: ""
    allow_multiple_values: false
    required: false
    ui_config:
      type: advanced
      display: popover
    model: fmnist
    explore: prediction_events
    field: prediction_events.cost_per_prediction_usd

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
    row: 0
    col: 0
    width: 6
    height: 3

  - name: live_accuracy
    title: Live accuracy (labelled feedback)
    note_text: "Correct / labelled feedback on the predictions of the period; 'unknown' answers count as wrong"
    model: fmnist
    explore: prediction_events
    type: single_value
    fields: [feedback_events.accuracy, feedback_events.labelled_count]
    limit: 1
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
    row: 0
    col: 6
    width: 6
    height: 3

  - name: cost_per_prediction
    title: Cost per prediction (USD)
    note_text: "From docs/gcp.md, 'Cost per prediction' (benchmarks/cost.py), or the filter above; KPI: below $0.001"
    model: fmnist
    explore: prediction_events
    type: single_value
    fields: [prediction_events.cost_per_prediction]
    limit: 1
    listen:
      cost_per_prediction: prediction_events.cost_per_prediction_usd
    row: 0
    col: 12
    width: 6
    height: 3

  - name: estimated_cost
    title: Estimated cost of the period (USD)
    model: fmnist
    explore: prediction_events
    type: single_value
    fields: [prediction_events.estimated_cost_usd]
    limit: 1
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      cost_per_prediction: prediction_events.cost_per_prediction_usd
    row: 0
    col: 18
    width: 6
    height: 3

  - name: volume_by_class
    title: Predictions per day, by class
    model: fmnist
    explore: prediction_events
    type: looker_column
    stacking: normal
    fields: [prediction_events.predicted_date, prediction_events.predicted_class, prediction_events.count]
    pivots: [prediction_events.predicted_class]
    fill_fields: [prediction_events.predicted_date]
    sorts: [prediction_events.predicted_date desc, prediction_events.predicted_class]
    limit: 500
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
    row: 3
    col: 0
    width: 16
    height: 7

  - name: class_share
    title: Share of predictions by class
    model: fmnist
    explore: prediction_events
    type: looker_pie
    fields: [prediction_events.predicted_class, prediction_events.count]
    sorts: [prediction_events.count desc]
    limit: 20
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
    row: 3
    col: 16
    width: 8
    height: 7

  - name: accuracy_trend
    title: Live accuracy per week, with its 95% interval
    model: fmnist
    explore: prediction_events
    type: looker_line
    fields: [prediction_events.predicted_week, feedback_events.accuracy, feedback_events.accuracy_low_95,
      feedback_events.accuracy_high_95, feedback_events.labelled_count]
    fill_fields: [prediction_events.predicted_week]
    sorts: [prediction_events.predicted_week desc]
    limit: 200
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
    row: 10
    col: 0
    width: 12
    height: 7

  - name: accuracy_by_class
    title: Live accuracy by true class
    model: fmnist
    explore: prediction_events
    type: looker_grid
    fields: [feedback_events.true_class, feedback_events.labelled_count, feedback_events.correct_count,
      feedback_events.accuracy, feedback_events.accuracy_low_95]
    filters:
      feedback_events.is_labelled: "Yes"
    sorts: [feedback_events.accuracy]
    limit: 20
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
    row: 10
    col: 12
    width: 12
    height: 7

  - name: drift
    title: Prediction-mix drift per day (PSI), by model
    note_text: "PSI of the daily class mix against each version's first days: above 0.1 worth a look, above 0.25 a shift"
    model: fmnist
    explore: class_mix_drift
    type: looker_line
    fields: [class_mix_drift.day_date, class_mix_drift.model, class_mix_drift.population_stability_index]
    pivots: [class_mix_drift.model]
    fill_fields: [class_mix_drift.day_date]
    sorts: [class_mix_drift.day_date desc, class_mix_drift.model]
    limit: 500
    listen:
      date: class_mix_drift.day_date
      model: class_mix_drift.model_name
    row: 17
    col: 0
    width: 12
    height: 7

  - name: cost_trend
    title: Estimated cost per day (USD)
    model: fmnist
    explore: prediction_events
    type: looker_column
    fields: [prediction_events.predicted_date, prediction_events.count, prediction_events.estimated_cost_usd]
    fill_fields: [prediction_events.predicted_date]
    sorts: [prediction_events.predicted_date desc]
    limit: 500
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
      cost_per_prediction: prediction_events.cost_per_prediction_usd
    row: 17
    col: 12
    width: 12
    height: 7

  - name: by_model_version
    title: Model versions
    model: fmnist
    explore: prediction_events
    type: looker_grid
    fields: [prediction_events.model, prediction_events.arm, prediction_events.count, prediction_events.unknown_rate,
      prediction_events.average_confidence, prediction_events.feedback_rate, feedback_events.accuracy,
      feedback_events.labelled_count]
    sorts: [prediction_events.count desc]
    limit: 100
    listen:
      date: prediction_events.predicted_date
      model: prediction_events.model_name
    row: 24
    col: 0
    width: 24
    height: 6
