"""The soak benchmark (``bench_soak.py``): payloads, the locustfile, sampling and analysis."""
