"""The one interface between boot batches and the rest of OpenStack.

:class:`Cloud` names every call the API's pre-flight checks and the runner
make to Keystone, Cinder, Glance and Nova, with plain dicts in and out, so
that unit tests and the process tests run against a fake
(``tests/fakes/cloud.py``) and :class:`OpenStackCloud` is the only code
that knows the client libraries.

Whose credentials: the API checks a request with the *user's* token (the
snapshot must be visible to the user, the quota is the user's project's)
and then creates a Keystone **trust** from the user to the runner's
service user, with the user's roles on the project and impersonation.
The runner acts through that trust. Why a trust and not the user's token
plus a service token (what Nova does toward Cinder): a batch outlives the
request, sometimes by hours (retries, a runner replaced after a crash,
``DELETE`` days later), longer than a user token lives, and a token kept
for later would be a bearer secret at rest in the database. A trust id is
useless without the runner's own credentials, can be revoked by the user
at any time, and is deleted with the batch.
"""

import abc

from fastboot_nova.virt import notifications

#: The server metadata key naming the batch that created a server: what
#: the notification listener attributes a server by before the runner has
#: recorded the server's id.
BATCH_METADATA = notifications.BATCH_METADATA


class Cloud(abc.ABC):
    """Calls for one user (pre-flight) or one batch's trust (runner).

    Errors: :class:`~fastboot_nova.coordinator.exception.SourceNotFound`,
    ``FlavorNotFound``, ``CloudUnavailable`` (5xx, timeouts: the caller
    retries within its bounds) (the caller handles them).
    """

    # -- pre-flight (user token) and trusts ---------------------------------

    @abc.abstractmethod
    def get_source(self, source_type, source_id):
        """``{'id', 'size' (GiB), 'status'}`` of a snapshot or volume."""

    @abc.abstractmethod
    def get_flavor(self, flavor):
        """``{'id', 'name', 'disk' (GiB)}`` by id or name."""

    @abc.abstractmethod
    def instances_left(self):
        """Servers the project may still create, or None if unlimited."""

    @abc.abstractmethod
    def create_trust(self):
        """A trust from the user to the runner; returns its id."""

    @abc.abstractmethod
    def delete_trust(self, trust_id):
        """Delete a trust; a missing one is not an error."""

    # -- origin (runner) ------------------------------------------------------

    @abc.abstractmethod
    def create_origin_volume(self, source_type, source_id, size, name):
        """Start a multiattach, ``fastboot_cacheable`` volume; its id."""

    @abc.abstractmethod
    def get_volume(self, volume_id):
        """``{'id', 'status'}`` or None when it does not exist."""

    @abc.abstractmethod
    def set_volume_readonly(self, volume_id):
        """Mark the origin read-only (Cinder's readonly flag)."""

    @abc.abstractmethod
    def delete_volume(self, volume_id):
        """Delete a volume; a missing one is not an error."""

    @abc.abstractmethod
    def create_image(self, volume_id, name):
        """The fastboot image of an origin volume; its id."""

    @abc.abstractmethod
    def delete_image(self, image_id):
        """Delete an image; a missing one is not an error."""

    # -- servers (runner) -----------------------------------------------------

    @abc.abstractmethod
    def create_servers(self, name, image_id, flavor_id, count, networks,
                       key_name=None, availability_zone=None,
                       metadata=None):
        """One Nova request, ``min_count = max_count = count``.

        Nova names the servers ``name-1`` .. ``name-count``
        (``name`` alone when count is 1).
        """

    @abc.abstractmethod
    def find_servers(self, name):
        """Servers named ``name`` or ``name-<n>``.

        A list of ``{'id', 'name', 'status', 'host', 'task_state',
        'fault'}`` (``task_state`` ``'deleting'`` while Nova deletes it).
        """

    @abc.abstractmethod
    def get_server(self, server_id):
        """As :meth:`find_servers`' items, or None when deleted."""

    @abc.abstractmethod
    def delete_server(self, server_id):
        """Ask Nova to delete a server (it does so asynchronously).

        A missing server is not an error.
        """


def server_index(request_name, server_name, count):
    """Which of a request's ``count`` servers ``server_name`` is (0-based).

    Nova's default ``multi_instance_display_name_template``
    ``%(name)s-%(count)d``; None for a name that is not the request's.
    """
    if count == 1:
        return 0 if server_name == request_name else None
    prefix = request_name + '-'
    if not server_name.startswith(prefix):
        return None
    tail = server_name[len(prefix):]
    if not tail.isdigit() or not 1 <= int(tail) <= count:
        return None
    return int(tail) - 1
