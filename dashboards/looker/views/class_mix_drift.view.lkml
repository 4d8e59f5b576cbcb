# Label-free drift of the served traffic as BigQuery sees it: each day's mix of predicted classes
# of a model version against that version's reference mix (its first @{drift_reference_days} days
# of predictions). Total variation distance (half the L1 distance between the two mixes, 0 to 1)
# and the population stability index (PSI; > 0.1 worth a look, > 0.25 a shift) per day.
#
# The drift monitor (`fmnist monitor run`) tests the inputs themselves (pixel statistics,
# embeddings, confidence) and alerts through Prometheus and Cloud Monitoring; its verdicts are
# not in BigQuery. This view is the business-side check that needs nothing but the log.
#
# Grain: one row per day x model name x model version x predicted class (every class the
# version ever answered appears every day it served, with 0 predictions when absent that day).
view: class_mix_drift {
  derived_table: {
    datagroup_trigger: fmnist_daily
    sql:
      WITH daily AS (
        SELECT
          DATE(time) AS day,
          model_name,
          model_version,
          predicted_class,
          COUNT(*) AS predictions
        FROM ${prediction_events.SQL_TABLE_NAME}
        GROUP BY day, model_name, model_version, predicted_class
      ),
      first_days AS (
        SELECT model_name, model_version, MIN(day) AS first_day
        FROM daily
        GROUP BY model_name, model_version
      ),
      reference AS (
        SELECT
          daily.model_name,
          daily.model_version,
          daily.predicted_class,
          SUM(daily.predictions) AS reference_predictions
        FROM daily
        JOIN first_days
          ON first_days.model_name = daily.model_name
          AND first_days.model_version = daily.model_version
        WHERE daily.day < DATE_ADD(first_days.first_day, INTERVAL @{drift_reference_days} DAY)
        GROUP BY daily.model_name, daily.model_version, daily.predicted_class
      ),
      classes AS (
        SELECT DISTINCT model_name, model_version, predicted_class FROM daily
      ),
      days AS (
        SELECT DISTINCT day, model_name, model_version FROM daily
      ),
      grid AS (
        SELECT
          days.day,
          days.model_name,
          days.model_version,
          classes.predicted_class,
          COALESCE(daily.predictions, 0) AS predictions,
          COALESCE(reference.reference_predictions, 0) AS reference_predictions,
          days.day < DATE_ADD(first_days.first_day, INTERVAL @{drift_reference_days} DAY) AS in_reference
        FROM days
        JOIN classes
          ON classes.model_name = days.model_name
          AND classes.model_version = days.model_version
        JOIN first_days
          ON first_days.model_name = days.model_name
          AND first_days.model_version = days.model_version
        LEFT JOIN daily
          ON daily.day = days.day
          AND daily.model_name = days.model_name
          AND daily.model_version = days.model_version
          AND daily.predicted_class = classes.predicted_class
        LEFT JOIN reference
          ON reference.model_name = days.model_name
          AND reference.model_version = days.model_version
          AND reference.predicted_class = classes.predicted_class
      ),
      shares AS (
        SELECT
          day,
          model_name,
          model_version,
          predicted_class,
          predictions,
          in_reference,
          SAFE_DIVIDE(predictions, SUM(predictions) OVER (PARTITION BY day, model_name, model_version)) AS share,
          SAFE_DIVIDE(reference_predictions, SUM(reference_predictions) OVER (PARTITION BY day, model_name, model_version)) AS reference_share
        FROM grid
      )
      SELECT
        day,
        model_name,
        model_version,
        predicted_class,
        predictions,
        in_reference,
        share,
        reference_share,
        ABS(share - reference_share) AS abs_share_difference,
        (share - reference_share) * LN((share + 0.0001) / (reference_share + 0.0001)) AS psi_term
      FROM shares
      ;;
  }

  dimension: pk {
    primary_key: yes
    hidden: yes
    type: string
    sql: CONCAT(CAST(${TABLE}.day AS STRING), '|', ${TABLE}.model_name, '|', CAST(${TABLE}.model_version AS STRING), '|', ${TABLE}.predicted_class) ;;
  }

  dimension: day_model_key {
    hidden: yes
    type: string
    sql: CONCAT(CAST(${TABLE}.day AS STRING), '|', ${TABLE}.model_name, '|', CAST(${TABLE}.model_version AS STRING)) ;;
  }

  dimension_group: day {
    type: time
    timeframes: [date, week, month]
    datatype: date
    convert_tz: no
    sql: ${TABLE}.day ;;
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

  dimension: model {
    type: string
    sql: CONCAT(${model_name}, ' v', CAST(${model_version} AS STRING)) ;;
  }

  dimension: predicted_class {
    type: string
    sql: ${TABLE}.predicted_class ;;
  }

  dimension: in_reference {
    type: yesno
    description: "The day is inside the version's reference window"
    sql: ${TABLE}.in_reference ;;
  }

  dimension: share {
    hidden: yes
    type: number
    sql: ${TABLE}.share ;;
  }

  dimension: reference_share {
    hidden: yes
    type: number
    sql: ${TABLE}.reference_share ;;
  }

  dimension: abs_share_difference {
    hidden: yes
    type: number
    sql: ${TABLE}.abs_share_difference ;;
  }

  dimension: psi_term {
    hidden: yes
    type: number
    sql: ${TABLE}.psi_term ;;
  }

  measure: predictions {
    type: sum
    sql: ${TABLE}.predictions ;;
  }

  measure: class_share {
    type: average
    description: "Share of the day's predictions (average over the days selected)"
    value_format_name: percent_2
    sql: ${share} ;;
  }

  measure: reference_class_share {
    type: average
    description: "Share in the version's reference window"
    value_format_name: percent_2
    sql: ${reference_share} ;;
  }

  measure: total_variation_distance {
    type: number
    description: "Half the L1 distance between the day's class mix and the reference mix, averaged over days x versions (0: same mix, 1: disjoint)"
    value_format_name: decimal_3
    sql: SAFE_DIVIDE(SUM(${abs_share_difference}), 2 * COUNT(DISTINCT ${day_model_key})) ;;
  }

  measure: population_stability_index {
    type: number
    label: "PSI"
    description: "Population stability index of the class mix against the reference, averaged over days x versions (> 0.1 worth a look, > 0.25 a shift)"
    value_format_name: decimal_3
    sql: SAFE_DIVIDE(SUM(${psi_term}), COUNT(DISTINCT ${day_model_key})) ;;
  }

  measure: max_class_shift {
    type: max
    description: "Largest change of one class's share against the reference"
    value_format_name: percent_2
    sql: ${abs_share_difference} ;;
  }
}
