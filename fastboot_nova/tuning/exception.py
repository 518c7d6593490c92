"""Errors of ``fastboot-tune``: each names the constraint or file at fault.

They are :class:`fastboot_nova.exception.FastbootException` subclasses, so
the devstack plugin and the storm harness can catch them like any other
fastboot error, and the CLI prints them as one line.
"""

from fastboot_nova import exception
from fastboot_nova.i18n import _


class TuningError(exception.FastbootException):
    message = _("Tuning failed: %(reason)s")


class ImpossibleInput(TuningError):
    """The inputs break a constraint no setting can satisfy."""

    message = _("Constraint %(constraint)s violated: %(reason)s")


class ConfigFileError(TuningError):
    """A config file cannot be used: missing, unreadable or not parsable."""

    message = _("%(path)s: %(reason)s")
