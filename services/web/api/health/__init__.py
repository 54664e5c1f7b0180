"""Liveness and readiness for orchestrators and load balancers."""
