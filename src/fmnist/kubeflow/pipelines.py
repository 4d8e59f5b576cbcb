"""The training and batch-prediction pipelines, defined once as KFP v2 pipelines."""

from typing import NamedTuple

from kfp import dsl

from fmnist.kubeflow.components import (
    batch_predict,
    drift_check,
    evaluate_and_register,
    snapshot,
    train,
)


@dsl.pipeline(
    name="fmnist-training",
    description="ingest + validate + snapshot -> train -> evaluate + gate + register "
    "(with its model card) -> promote when the gates pass",
)
def training_pipeline(
    preset: str = "quick", max_minutes: float = 0.0, promote: bool = True
) -> NamedTuple(  # type: ignore[valid-type]  # KFP reads the pipeline's outputs from this form
    "Outputs", [("run_id", str), ("accuracy", float), ("gates_passed", bool), ("version", int)]
):
    """The main job of ``fmnist pipeline run`` as a KFP pipeline."""
    data = snapshot().set_display_name("ingest-validate-snapshot")
    trained = train(snapshot_id=data.output, preset=preset, max_minutes=max_minutes)
    result = evaluate_and_register(run_id=trained.output, promote=promote).set_display_name(
        "evaluate-gate-register"
    )
    outputs = NamedTuple(  # type: ignore[name-match]  # noqa: UP014 - the form KFP reads
        "Outputs", [("run_id", str), ("accuracy", float), ("gates_passed", bool), ("version", int)]
    )
    return outputs(
        trained.output,
        result.outputs["accuracy"],
        result.outputs["gates_passed"],
        result.outputs["version"],
    )


@dsl.pipeline(name="fmnist-batch-prediction", description="batch inference into Parquet")
def batch_prediction_pipeline(  # type: ignore[no-untyped-def]
    input_uri: str, output_uri: str, model_ref: str = "champion"
):
    """``fmnist predict batch`` as a KFP pipeline."""
    batch_predict(model_ref=model_ref, input_uri=input_uri, output_uri=output_uri)


@dsl.pipeline(name="fmnist-drift-check", description="one check of the drift monitor")
def drift_check_pipeline():  # type: ignore[no-untyped-def]
    """``fmnist monitor run --once`` as a KFP pipeline (scheduled hourly on Vertex AI)."""
    drift_check()


PIPELINES = {
    "training": training_pipeline,
    "batch-prediction": batch_prediction_pipeline,
    "drift-check": drift_check_pipeline,
}
"""Pipeline name -> its KFP definition."""
