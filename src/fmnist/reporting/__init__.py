"""Templates of the generated documents and the Jinja2 environment that renders them.

Every Markdown or HTML page the project generates (the model card, the leaderboard page, the
real-photo experiment report) is a template under ``templates/``, shipped as package data. The
code that collects a document's data lives with that data (``fmnist.evaluation.model_card``,
``fmnist.pipelines.leaderboard_page``, ``fmnist.realworld.report``) and calls
:func:`fmnist.reporting.templates.render`. This package imports nothing else of fmnist, so any
area may use it without an import cycle.
"""
