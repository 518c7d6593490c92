"""One module per service: ``up(stack)``, ``down(stack)`` and ``NAMES``."""
