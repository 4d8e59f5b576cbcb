"""Tests of the gcp profile's adapters on the emulators they start (`make test-gcp`)."""
