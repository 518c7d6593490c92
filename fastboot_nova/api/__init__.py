"""nova-api side of fastboot: WSGI middleware for the compute API."""
