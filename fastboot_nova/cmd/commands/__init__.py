"""The commands of the ``fastboot`` CLI.

Loaded through the ``fastboot.cli`` entry point namespace.
"""
