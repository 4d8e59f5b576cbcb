# One row per feedback (POST /v1/feedback, the web UI's "Wrong?" control): the true label of a
# served prediction, or "out of scope". At most one per request (event_id feedback:<request_id>).
# Columns: src/fmnist/analytics/schemas/feedback_events.json. Accuracy follows
# src/fmnist/analytics/queries/live_accuracy.sql: over labelled feedback only, an 'unknown'
# answer counts as wrong, out-of-scope items are left out.
view: feedback_events {
  sql_table_name: `@{bigquery_dataset}.feedback_events` ;;

  dimension: event_id {
    primary_key: yes
    hidden: yes
    type: string
    description: "CloudEvents id: feedback:<request_id>"
    sql: ${TABLE}.event_id ;;
  }

  dimension: request_id {
    hidden: yes
    type: string
    description: "The request the feedback is about (joins prediction_events.request_id)"
    sql: ${TABLE}.request_id ;;
  }

  dimension_group: feedback {
    type: time
    description: "When the feedback was given (UTC)"
    timeframes: [raw, time, hour, date, week, month]
    datatype: timestamp
    sql: ${TABLE}.time ;;
  }

  dimension: label {
    type: number
    description: "True class id (0-9); null when the item is outside the ten classes"
    value_format_name: id
    sql: ${TABLE}.label ;;
  }

  dimension: true_class {
    type: string
    description: "True class name; null when the item is outside the ten classes"
    sql: ${TABLE}.label_name ;;
  }

  dimension: out_of_scope {
    type: yesno
    description: "The user marked the item as none of the ten classes"
    sql: ${TABLE}.unknown ;;
  }

  dimension: model_name {
    type: string
    sql: ${TABLE}.model_name ;;
  }

  dimension: model_version {
    type: number
    value_format_name: id
    sql: ${TABLE}.model_version ;;
  }

  dimension: predicted_class {
    type: string
    description: "The answer the feedback is about, as served"
    sql: ${TABLE}.predicted_class ;;
  }

  dimension: is_labelled {
    type: yesno
    description: "The feedback carries a true class (not out of scope)"
    sql: ${TABLE}.label IS NOT NULL ;;
  }

  dimension: is_correct {
    type: yesno
    description: "Labelled and the served class equals the true class ('unknown' is wrong)"
    sql: ${TABLE}.label IS NOT NULL AND ${TABLE}.predicted_class = ${TABLE}.label_name ;;
  }

  measure: count {
    type: count
    label: "Feedback"
  }

  measure: labelled_count {
    type: count
    label: "Labelled feedback"
    filters: [is_labelled: "yes"]
  }

  measure: correct_count {
    type: count
    label: "Correct predictions (labelled)"
    filters: [is_correct: "yes"]
  }

  measure: out_of_scope_count {
    type: count
    label: "Out-of-scope feedback"
    filters: [out_of_scope: "yes"]
  }

  measure: accuracy {
    type: number
    label: "Live accuracy"
    description: "Correct / labelled feedback (src/fmnist/analytics/queries/live_accuracy.sql)"
    value_format_name: percent_2
    sql: SAFE_DIVIDE(${correct_count}, ${labelled_count}) ;;
  }

  # Wilson score interval at 95 % (z = 1.96), as fmnist.monitoring.feedback.live_accuracy.
  measure: accuracy_low_95 {
    type: number
    label: "Live accuracy, 95% low"
    value_format_name: percent_2
    sql: SAFE_DIVIDE(
           ${correct_count} + 1.9208
             - 1.96 * SQRT(SAFE_DIVIDE(${correct_count} * (${labelled_count} - ${correct_count}), ${labelled_count}) + 0.9604),
           ${labelled_count} + 3.8416) ;;
  }

  measure: accuracy_high_95 {
    type: number
    label: "Live accuracy, 95% high"
    value_format_name: percent_2
    sql: SAFE_DIVIDE(
           ${correct_count} + 1.9208
             + 1.96 * SQRT(SAFE_DIVIDE(${correct_count} * (${labelled_count} - ${correct_count}), ${labelled_count}) + 0.9604),
           ${labelled_count} + 3.8416) ;;
  }
}
