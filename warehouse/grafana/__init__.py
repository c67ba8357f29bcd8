"""Grafana dashboards for the warehouse, their provisioning, and the PNG report that shares their SQL."""
