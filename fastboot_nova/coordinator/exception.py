"""Errors of the coordinator, each with the HTTP status it maps to.

The fault wrapper (:mod:`fastboot_nova.coordinator.api.fault`) turns any of
them into a JSON error body; ``code`` is the status.
"""

from fastboot_nova import exception
from fastboot_nova.i18n import _


class CoordinatorError(exception.FastbootException):
    code = 500
    title = 'Internal Server Error'


class ConfigurationError(CoordinatorError):
    message = _("Invalid coordinator configuration: %(reason)s")


class BadRequest(CoordinatorError):
    code = 400
    title = 'Bad Request'
    message = _("%(reason)s")


class UnsupportedMediaType(CoordinatorError):
    code = 415
    title = 'Unsupported Media Type'
    message = _("The request body must be application/json, not "
                "%(content_type)s.")


class NotAuthenticated(CoordinatorError):
    code = 401
    title = 'Unauthorized'
    message = _("%(reason)s")


class Forbidden(CoordinatorError):
    code = 403
    title = 'Forbidden'
    message = _("%(reason)s")


class NotFound(CoordinatorError):
    code = 404
    title = 'Not Found'
    message = _("%(reason)s")


class HostNotFound(NotFound):
    message = _("Host %(host)s is not registered (it may have been "
                "deregistered); register it again.")


class VolumeNotFound(NotFound):
    message = _("No host caches volume %(volume)s.")


class CacheNotFound(NotFound):
    message = _("Host %(host)s has not reported a cache of volume "
                "%(volume)s.")


class MethodNotAllowed(CoordinatorError):
    code = 405
    title = 'Method Not Allowed'
    message = _("%(method)s is not allowed here; allowed: %(allowed)s.")


class Conflict(CoordinatorError):
    code = 409
    title = 'Conflict'
    message = _("%(reason)s")


class HostExists(Conflict):
    message = _("Host %(host)s is already registered. The host itself "
                "registers again with its own token (or, with keystone, as "
                "the user that registered it); an operator can re-issue "
                "the token: fastboot-coordinator-manage host reset-token "
                "%(host)s, or POST /v1/hosts/%(host)s/token with the admin "
                "role.")


class ParentCycle(Conflict):
    message = _("Host %(host)s cannot read volume %(volume)s from "
                "%(parent)s: %(parent)s is %(relation)s, that would make a "
                "cycle.")


class ParentNotCaching(Conflict):
    message = _("Host %(parent)s has no live cache of volume %(volume)s to "
                "read from.")


class HostDead(Conflict):
    message = _("Host %(host)s has not sent a heartbeat for more than "
                "%(timeout)d seconds; send a heartbeat first.")


class ServiceUnavailable(CoordinatorError):
    code = 503
    title = 'Service Unavailable'
    message = _("%(reason)s")


class DatabaseUnavailable(ServiceUnavailable):
    message = _("The coordinator database is unavailable; retry later.")


class LockTimeout(ServiceUnavailable):
    message = _("Timed out waiting for the lock of %(name)s; retry later.")


class CoordinationUnavailable(ServiceUnavailable):
    message = _("The coordination backend is unavailable: %(reason)s")


# -- boot batches -------------------------------------------------------------

class BatchNotFound(NotFound):
    message = _("Batch %(batch)s not found.")


class IdempotencyConflict(Conflict):
    message = _("Idempotency-Key %(key)s was already used with a different "
                "request body.")


class SourceNotFound(NotFound):
    message = _("%(kind)s %(id)s not found.")


class SourceNotAvailable(Conflict):
    message = _("%(kind)s %(id)s is %(status)s, not available.")


class FlavorTooSmall(BadRequest):
    message = _("Flavor %(flavor)s has a %(disk)d GiB disk, smaller than "
                "the %(size)d GiB volume.")


class FlavorNotFound(BadRequest):
    message = _("Flavor %(flavor)s not found.")


class OverQuota(CoordinatorError):
    code = 403
    title = 'Forbidden'
    message = _("Quota exceeded: %(count)d servers asked, %(left)d left in "
                "the project's instance quota.")


class CloudUnavailable(ServiceUnavailable):
    message = _("%(service)s did not answer: %(reason)s")
