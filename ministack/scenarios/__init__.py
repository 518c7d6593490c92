"""Scenarios run against a running ministack (tests and the demo)."""
