"""Progress lines of the demo: logged, and passed to the caller's callback."""

import logging

LOG = logging.getLogger('fastboot_nova.demo')


def notify(progress, msg, *args):
    """Log ``msg % args`` and hand the line to ``progress`` if given."""
    LOG.info(msg, *args)
    if progress is not None:
        progress(msg % args if args else msg)
