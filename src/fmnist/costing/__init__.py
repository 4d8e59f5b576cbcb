"""Cost analysis: measured throughput and published prices -> cost per prediction, per run.

The modules, bottom to top: :mod:`~fmnist.costing.prices` (the price list, validated),
:mod:`~fmnist.costing.inputs` (the measured result files), :mod:`~fmnist.costing.profile` (the
traffic profile), :mod:`~fmnist.costing.serving` (Cloud Run, Vertex AI, GKE, a VM),
:mod:`~fmnist.costing.datapath` (Pub/Sub, BigQuery, logging, storage),
:mod:`~fmnist.costing.training` (a training run on cloud instances),
:mod:`~fmnist.costing.analysis` (break-evens and levers), :mod:`~fmnist.costing.report` (the
whole result), :mod:`~fmnist.costing.render` (Markdown) and :mod:`~fmnist.costing.plots` (PNGs).
``fmnist cost report`` (:mod:`~fmnist.costing.cli`) runs them.
"""
