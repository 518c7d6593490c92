"""The REST API: one module per resource, plus routing and error handling."""
