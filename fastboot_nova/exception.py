"""Exceptions raised by fastboot.

Every exception carries a message template, filled from keyword arguments,
so that callers (the CLI, the Nova driver, the coordinator API) can show one
clear line to the user.
"""

from fastboot_nova.i18n import _


class FastbootException(Exception):
    """Base exception; subclasses set ``message``."""

    message = _("An unknown fastboot error occurred.")

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message % kwargs
            except (KeyError, TypeError):
                # A template/kwargs mismatch must not hide the real error.
                message = self.message
        self.msg = message
        super().__init__(message)


class InvalidName(FastbootException):
    message = _("Invalid %(kind)s name %(name)r: %(reason)s.")


class InvalidLocation(FastbootException):
    message = _("Invalid origin location %(location)r: %(reason)s.")


class OriginUnavailable(FastbootException):
    message = _("Origin %(location)s of image %(image)s is not reachable: "
                "%(reason)s")


class ImageConflict(FastbootException):
    message = _("Image %(image)s is already cached from %(existing)s, "
                "not %(location)s.")


class ImageNotFound(FastbootException):
    message = _("Image %(image)s is not in this host's cache group.")


class ImageInUse(FastbootException):
    message = _("Image %(image)s is still used by VMs: %(vms)s.")


class VmExists(FastbootException):
    message = _("VM %(vm)s already exists.")


class VmNotFound(FastbootException):
    message = _("VM %(vm)s does not exist.")


class VmDiskInUse(FastbootException):
    message = _("The disk of VM %(vm)s is open by a running process; "
                "stop the VM first.")


class CacheFull(FastbootException):
    message = _("Not enough room for the cache of image %(image)s in "
                "%(path)s: %(need)d bytes needed, %(free)d available "
                "(cache_size_limit and free disk space both count).")


class DaemonError(FastbootException):
    message = _("qemu-storage-daemon: %(reason)s")


class ExportAuthError(FastbootException):
    message = _("Host-to-host export authentication is misconfigured: "
                "%(reason)s")


class QMPError(FastbootException):
    message = _("QMP command %(command)s failed: %(reason)s")


class CommandFailed(FastbootException):
    message = _("Command %(cmd)s failed with exit code %(code)s: "
                "%(stderr)s")


class StateError(FastbootException):
    message = _("State file %(path)s is unusable: %(reason)s")


class InvalidDestination(FastbootException):
    message = _("Invalid destination %(destination)r: %(reason)s.")


class BackendUnavailable(FastbootException):
    message = _("Storage backend %(backend)s is unavailable: %(reason)s")
