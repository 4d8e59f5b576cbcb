# The whole GCP platform of one environment: every module wired together. Environments
# (envs/dev, envs/prod) call this module with their values only. Order of creation follows
# the data flow: APIs and service agents -> KMS keys granted to them -> network, identities ->
# data stores -> workloads -> monitoring and budget.

locals {
  prefix = "${var.name_prefix}-${var.environment}"
  labels = merge(var.labels, {
    app         = var.name_prefix
    environment = var.environment
    managed-by  = "terraform"
  })
  agents = module.project_services.service_agents

  images = {
    api     = "${module.artifact_registry.image_prefix}/${var.name_prefix}-api:${var.image_tag}"
    monitor = "${module.artifact_registry.image_prefix}/${var.name_prefix}-monitor:${var.image_tag}"
    trainer = "${module.artifact_registry.image_prefix}/${var.name_prefix}-trainer:${var.image_tag}"
  }

  # fmnist settings of every workload (src/fmnist/config.py, FMNIST_<SECTION>__<KEY>); the
  # tests check each name against the settings model.
  settings_env = {
    FMNIST_PROFILE                    = "gcp"
    FMNIST_HOME                       = "/tmp/fmnist"
    FMNIST_GCP__PROJECT               = var.project_id
    FMNIST_GCP__REGION                = var.region
    FMNIST_GCP__BUCKET                = module.storage.names["data-lake"]
    FMNIST_GCP__BIGQUERY_DATASET      = module.bigquery.dataset_id
    FMNIST_GCP__PUBSUB_TOPIC_PREFIX   = var.name_prefix
    FMNIST_GCP__PIPELINE_ROOT         = module.storage.urls["pipeline-root"]
    FMNIST_GCP__SERVICE_ACCOUNT       = module.iam.emails["pipelines"]
    FMNIST_GCP__KMS_KEY               = module.kms.key_ids["vertex-ai"]
    FMNIST_GCP__NETWORK               = "projects/${module.project_services.project_number}/global/networks/${module.network.network_name}"
    FMNIST_GCP__DATAFLOW_MACHINE_TYPE = var.dataflow_machine_type
    FMNIST_SECURITY__AUTH             = "on"
    FMNIST_SECURITY__RATE_LIMIT       = "on"
  }
}

module "project_services" {
  source = "../project-services"

  project_id = var.project_id
}

module "kms" {
  source = "../kms"

  project_id       = var.project_id
  location         = var.region
  key_ring_name    = "${local.prefix}-${var.key_ring_suffix}"
  protection_level = var.kms_protection_level
  labels           = local.labels

  keys = {
    storage           = { encrypters = { agent = "serviceAccount:${local.agents.storage}" } }
    bigquery          = { encrypters = { agent = "serviceAccount:${local.agents.bigquery}" } }
    pubsub            = { encrypters = { agent = "serviceAccount:${local.agents.pubsub}" } }
    artifact-registry = { encrypters = { agent = "serviceAccount:${local.agents.artifact_registry}" } }
    secrets           = { encrypters = { agent = "serviceAccount:${local.agents.secret_manager}" } }
    vertex-ai         = { encrypters = { agent = "serviceAccount:${local.agents.vertex_ai}" } }
    cloud-run         = { encrypters = { agent = "serviceAccount:${local.agents.cloud_run}" } }
    dataflow = {
      encrypters = {
        dataflow_agent = "serviceAccount:${local.agents.dataflow}"
        compute_agent  = "serviceAccount:${local.agents.compute}"
      }
    }
  }

  depends_on = [module.project_services]
}

module "network" {
  source = "../network"

  project_id            = var.project_id
  project_number        = module.project_services.project_number
  region                = var.region
  network_name          = local.prefix
  subnet_cidr           = var.subnet_cidr
  private_services_cidr = var.private_services_cidr
  enable_vpc_sc         = var.enable_vpc_sc
  vpc_sc_enforced       = var.vpc_sc_enforced
  access_policy_id      = var.access_policy_id
  labels                = local.labels

  depends_on = [module.project_services]
}

module "iam" {
  source = "../iam"

  project_id        = var.project_id
  name_prefix       = local.prefix
  github_repository = var.github_repository
  github_subjects   = var.github_subjects
  wif_pool_id       = "${local.prefix}-github"

  depends_on = [module.project_services]
}

module "storage" {
  source = "../storage"

  project_id                   = var.project_id
  name_prefix                  = "${var.project_id}-${var.name_prefix}"
  location                     = var.region
  kms_key_name                 = module.kms.key_ids["storage"]
  pipeline_root_retention_days = var.pipeline_root_retention_days
  labels                       = local.labels

  bucket_iam = {
    serving_artifacts_read    = { bucket = "artifacts", role = "roles/storage.objectViewer", member = module.iam.members["serving"] }
    pipelines_lake_write      = { bucket = "data-lake", role = "roles/storage.objectUser", member = module.iam.members["pipelines"] }
    pipelines_artifacts_write = { bucket = "artifacts", role = "roles/storage.objectUser", member = module.iam.members["pipelines"] }
    pipelines_root_write      = { bucket = "pipeline-root", role = "roles/storage.objectUser", member = module.iam.members["pipelines"] }
    pipelines_dataflow_write  = { bucket = "dataflow", role = "roles/storage.objectUser", member = module.iam.members["pipelines"] }
    monitor_lake_read         = { bucket = "data-lake", role = "roles/storage.objectViewer", member = module.iam.members["monitor"] }
    monitor_artifacts_write   = { bucket = "artifacts", role = "roles/storage.objectUser", member = module.iam.members["monitor"] }
    ci_dataflow_templates     = { bucket = "dataflow", role = "roles/storage.objectUser", member = module.iam.members["ci_deployer"] }
    vertex_agent_root         = { bucket = "pipeline-root", role = "roles/storage.objectUser", member = "serviceAccount:${local.agents.vertex_ai}" }
    vertex_agent_artifacts    = { bucket = "artifacts", role = "roles/storage.objectViewer", member = "serviceAccount:${local.agents.vertex_ai}" }
  }

  depends_on = [module.kms]
}

module "bigquery" {
  source = "../bigquery"

  project_id           = var.project_id
  dataset_id           = var.bigquery_dataset
  location             = var.region
  kms_key_name         = module.kms.key_ids["bigquery"]
  event_retention_days = var.event_retention_days
  labels               = local.labels

  # The Feature Store syncs the features table as the Vertex AI service agent.
  dataset_iam = {
    for name, grant in {
      pipelines_edit    = { role = "roles/bigquery.dataEditor", member = module.iam.members["pipelines"] }
      monitor_edit      = { role = "roles/bigquery.dataEditor", member = module.iam.members["monitor"] }
      serving_read      = { role = "roles/bigquery.dataViewer", member = module.iam.members["serving"] }
      vertex_agent_read = { role = "roles/bigquery.dataViewer", member = "serviceAccount:${local.agents.vertex_ai}" }
    } : name => grant if name != "vertex_agent_read" || var.enable_feature_store
  }

  depends_on = [module.kms]
}

module "artifact_registry" {
  source = "../artifact-registry"

  project_id    = var.project_id
  location      = var.region
  repository_id = var.name_prefix
  kms_key_name  = module.kms.key_ids["artifact-registry"]
  labels        = local.labels

  repository_iam = {
    ci_write      = { role = "roles/artifactregistry.writer", member = module.iam.members["ci_deployer"] }
    serving_read  = { role = "roles/artifactregistry.reader", member = module.iam.members["serving"] }
    pipeline_read = { role = "roles/artifactregistry.reader", member = module.iam.members["pipelines"] }
    monitor_read  = { role = "roles/artifactregistry.reader", member = module.iam.members["monitor"] }
  }

  depends_on = [module.kms]
}

module "pubsub" {
  source = "../pubsub"

  project_id           = var.project_id
  region               = var.region
  topic_prefix         = var.name_prefix
  kms_key_name         = module.kms.key_ids["pubsub"]
  pubsub_service_agent = local.agents.pubsub
  labels               = local.labels

  publishers  = { serving = module.iam.members["serving"], pipelines = module.iam.members["pipelines"] }
  subscribers = { monitor = module.iam.members["monitor"] }

  depends_on = [module.kms]
}

module "secrets" {
  source = "../secrets"

  project_id   = var.project_id
  region       = var.region
  name_prefix  = local.prefix
  kms_key_name = module.kms.key_ids["secrets"]
  labels       = local.labels

  accessors = { serving = module.iam.members["serving"] }

  depends_on = [module.kms]
}

module "vertex" {
  source = "../vertex"

  project_id                = var.project_id
  region                    = var.region
  kms_key_name              = module.kms.key_ids["vertex-ai"]
  pipelines_service_account = module.iam.emails["pipelines"]
  network                   = module.network.private_network
  enable_feature_store      = var.enable_feature_store
  features_table_uri        = module.bigquery.features_table_uri
  labels                    = local.labels

  # Who may submit jobs running as the pipelines account (actAs) is granted by module.iam.
  registry_readers = { serving = module.iam.members["serving"], monitor = module.iam.members["monitor"] }

  depends_on = [module.kms, module.network]
}

module "cloud_run" {
  source = "../cloud-run"

  project_id          = var.project_id
  region              = var.region
  service_name        = "${var.name_prefix}-api"
  image               = local.images.api
  service_account     = module.iam.emails["serving"]
  min_instances       = var.api_min_instances
  max_instances       = var.api_max_instances
  concurrency         = var.api_concurrency
  cpu                 = var.api_cpu
  memory              = var.api_memory
  network             = module.network.network_id
  subnetwork          = module.network.subnetwork_id
  ingress             = var.api_ingress
  kms_key_name        = module.kms.key_ids["cloud-run"]
  stable_revision     = var.api_stable_revision
  canary_percent      = var.api_canary_percent
  public_invoker      = var.public_invoker
  deletion_protection = var.deletion_protection
  labels              = local.labels

  api_keys_secret     = module.secrets.secret_ids["api-keys"]
  model_export_bucket = var.api_model_export_path == null ? null : module.storage.names["artifacts"]
  model_export_path   = coalesce(var.api_model_export_path, "model-export")

  env = local.settings_env
  secret_env = {
    FMNIST_SERVING__ADMIN_TOKEN = { secret = module.secrets.secret_ids["admin-token"], version = "latest" }
  }

  invokers = merge(var.api_invokers, {
    uptime_check = "serviceAccount:${local.agents.monitoring}"
  })

  depends_on = [module.kms, module.secrets]
}

module "cloud_build" {
  source = "../cloud-build"

  project_id               = var.project_id
  name_prefix              = local.prefix
  github_owner             = split("/", var.github_repository)[0]
  github_name              = split("/", var.github_repository)[1]
  service_account          = module.iam.emails["ci_deployer"]
  require_release_approval = var.require_release_approval

  substitutions = {
    _REGION     = var.region
    _REPOSITORY = module.artifact_registry.name
    _SERVICE    = module.cloud_run.service_name
  }
}

module "scheduler" {
  source = "../scheduler"

  project_id                = var.project_id
  region                    = var.region
  name_prefix               = local.prefix
  scheduler_service_account = module.iam.emails["monitor"]
  network                   = module.network.network_id
  subnetwork                = module.network.subnetwork_id
  kms_key_name              = module.kms.key_ids["cloud-run"]
  deletion_protection       = var.deletion_protection
  paused                    = var.schedules_paused
  env                       = local.settings_env
  labels                    = local.labels

  jobs = {
    drift-check = {
      image           = local.images.monitor
      args            = ["monitor", "run", "--once", "--port", "0"]
      schedule        = var.drift_check_schedule
      service_account = module.iam.emails["monitor"]
      timeout         = "1800s"
    }
    analytics-consume = {
      image           = local.images.monitor
      args            = ["events", "consume", "--once", "--no-relay"]
      schedule        = var.analytics_consume_schedule
      service_account = module.iam.emails["monitor"]
      cpu             = "1"
      memory          = "2Gi"
      timeout         = "600s"
    }
    retrain = {
      image           = local.images.trainer
      args            = ["retrain", "--reason", "weekly schedule (Cloud Scheduler ${local.prefix}-retrain)", "--json"]
      schedule        = var.retrain_schedule
      service_account = module.iam.emails["pipelines"]
      cpu             = "4"
      memory          = "16Gi"
      timeout         = "14400s"
      max_retries     = 0
    }
  }

  depends_on = [module.kms]
}

module "dataflow" {
  source = "../dataflow"

  project_id       = var.project_id
  region           = var.region
  name_prefix      = local.prefix
  dataflow_bucket  = module.storage.names["dataflow"]
  data_lake_bucket = module.storage.names["data-lake"]
  artifacts_bucket = module.storage.names["artifacts"]
  repository       = module.artifact_registry.name
  subnetwork       = module.network.subnetwork_self_link
  network_tag      = module.network.dataflow_network_tag
  kms_key_name     = module.kms.key_ids["dataflow"]

  launchers = { pipelines = module.iam.members["pipelines"] }

  depends_on = [module.artifact_registry]
}

module "monitoring" {
  source = "../monitoring"

  project_id               = var.project_id
  service_name             = module.cloud_run.service_name
  uptime_host              = trimprefix(module.cloud_run.uri, "https://")
  notification_emails      = var.notification_emails
  latency_p95_threshold_ms = var.latency_p95_threshold_ms
  error_rate_threshold     = var.error_rate_threshold
  slo_goal                 = var.availability_slo
  docs_base_url            = var.docs_base_url
  labels                   = local.labels

  depends_on = [module.project_services]
}

module "budget" {
  source = "../budget"

  project_id            = var.project_id
  project_number        = module.project_services.project_number
  region                = var.region
  name_prefix           = local.prefix
  billing_account       = var.billing_account
  amount                = var.budget_amount
  currency_code         = var.budget_currency
  notification_channels = module.monitoring.notification_channels
  kms_key_name          = module.kms.key_ids["pubsub"]
  labels                = local.labels

  depends_on = [module.kms]
}
