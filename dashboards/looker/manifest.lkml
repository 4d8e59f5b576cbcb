# Project manifest of the fmnist LookML project (dashboards/looker/ is the project root).
# The constants are the settings of one deployment; change them here, not in the views.
project_name: "fmnist"

# The BigQuery dataset that holds the analytics tables (settings: gcp.dataset, default "fmnist").
# A dataset of another project is written "project.dataset".
constant: bigquery_dataset {
  value: "fmnist"
  export: override_optional
}

# The default cost of one prediction in USD, used when the dashboards' "Cost per prediction"
# filter is left empty. It is the Cloud Run figure of docs/gcp.md ("Cost per prediction", at
# 10 requests/s on average, everything per prediction included), which benchmarks/cost.py
# computes from measured throughput and dated list prices: update it from there.
constant: cost_per_prediction_usd {
  value: "0.0000033"
  export: override_optional
}

# How many days of a model version's first predictions are its reference class mix for the
# prediction-mix drift view (class_mix_drift).
constant: drift_reference_days {
  value: "7"
  export: override_optional
}
