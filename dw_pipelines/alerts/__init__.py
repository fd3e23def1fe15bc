"""Alerts: failed runs and failed error-severity checks, posted to a chat webhook."""
