"""Boot batches: "boot N servers from snapshot S" as one API call.

``cloud`` is the one small interface to Keystone, Cinder, Glance and Nova;
``preflight`` checks a request before it is persisted; ``runner`` is the
``fastboot-runner`` process that does the slow work; ``listener`` turns
notifications into the per-server timeline (``timeline``).
"""
