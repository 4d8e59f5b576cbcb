"""Beam pipeline options: DirectRunner here, DataflowRunner built from the gcp settings."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    StandardOptions,
    WorkerOptions,
)

from fmnist.batch.beam_job import pipeline_options
from fmnist.config import GcpSettings

GCP = GcpSettings(
    project="fmnist-prod",
    region="europe-west4",
    bucket="fmnist-prod-lake",
    kms_key="projects/fmnist-prod/locations/europe-west4/keyRings/fmnist/cryptoKeys/data",
    service_account="dataflow@fmnist-prod.iam.gserviceaccount.com",
    network="projects/123/global/networks/fmnist-vpc",
    dataflow_image="europe-west4-docker.pkg.dev/fmnist-prod/fmnist/batch:0.1.0",
)


def test_dataflow_options_come_from_the_gcp_settings() -> None:
    options = pipeline_options("DataflowRunner", GCP, ["--max_num_workers=8"])
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region) == ("fmnist-prod", "europe-west4")
    assert cloud.temp_location == "gs://fmnist-prod-lake/dataflow/temp"
    assert cloud.staging_location == "gs://fmnist-prod-lake/dataflow/staging"
    assert cloud.dataflow_kms_key == GCP.kms_key
    assert cloud.service_account_email == GCP.service_account
    assert cloud.labels == ["app=fmnist"]
    workers = options.view_as(WorkerOptions)
    assert workers.machine_type == "n2-standard-4"
    assert workers.sdk_container_image == GCP.dataflow_image
    assert workers.network == "fmnist-vpc"
    assert workers.max_num_workers == 8  # --beam-option flags go through


def test_dataflow_needs_a_project_and_a_bucket() -> None:
    with pytest.raises(ValueError, match=r"gcp\.project and gcp\.bucket"):
        pipeline_options("DataflowRunner", GcpSettings())
    assert pipeline_options().view_as(StandardOptions).runner == "DirectRunner"
