"""Automated retraining: triggers, storm protection, feedback-augmented data, gated candidates.

:func:`~fmnist.retraining.run.retrain` is the one entry point; the CLI (``fmnist retrain``)
and the monitor (``fmnist monitor run`` with ``retraining.auto``) call it.
"""
