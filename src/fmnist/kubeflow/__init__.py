"""The lifecycle as Kubeflow Pipelines v2: components, pipelines, compilation, local runs and
Vertex AI Pipelines jobs.

An interface layer, like the CLI: each component's body builds the services from the settings
in its environment (``FMNIST_HOME``, ``FMNIST_CONFIG``, ``FMNIST_*``) through the composition
root and calls the same library functions as ``fmnist pipeline run``.
"""
