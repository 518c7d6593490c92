"""The fastboot Horizon plugin ("Fast Boot" panel).

Only a placeholder for now: the panel, its enabled files, views and API
wrappers land with their own issue. The package exists so that packaging
and the devstack plugin can already refer to it.
"""
