"""The fastboot Horizon plugin: the "Fast Boot" panel group.

Boot N servers from one volume snapshot through the coordinator's batch
API (``/v1/batches``), watch them come up, and see where each server's
time went. Plain Django views (Horizon is retiring AngularJS), laid out
like manila-ui and watcher-dashboard: ``enabled/`` for Horizon's
pluggable settings, ``api/`` for the REST wrapper, ``content/`` for the
panel.
"""
