"""AutoML baselines on managed services: Vertex AI AutoML image classification (export, launch)."""
