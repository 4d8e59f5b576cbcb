"""API keys with scopes and rate limits: the service's own access control."""
