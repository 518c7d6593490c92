"""The real :class:`~.cloud.Cloud`: keystoneauth, cinderclient,
glanceclient, novaclient.

Tested against a real cloud by the ministack functional tests (issue 11);
the unit and process tests use ``tests/fakes/cloud.py``. Client errors are
mapped here and only here: 404 -> SourceNotFound/None, 5xx and timeouts ->
CloudUnavailable (which the runner retries within ``[batches]
cloud_retries``).
"""

import contextlib
import functools
import io

from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from glanceclient import client as glance_client
from glanceclient import exc as glance_exc
from keystoneauth1 import exceptions as ks_exc
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from fastboot_nova.coordinator.batches import cloud
from fastboot_nova.coordinator import exception

NOVA_VERSION = '2.74'
CINDER_VERSION = '3.50'
STUB_IMAGE = b'\0' * 512  # never read: the servers boot the origin
#: Image properties of the origin's ``volume_image_metadata`` that the
#: fastboot image carries over: how to boot the volume (a kernel and
#: ramdisk, a command line, hw_* and os_* hints), as Nova uses a volume's
#: image metadata when it boots from the volume itself.
BOOT_PROPERTIES = ('kernel_id', 'ramdisk_id')
BOOT_PREFIXES = ('hw_', 'img_', 'os_')
#: Glance's own or per-file fields: never copied (``os_hidden`` would
#: hide the fastboot image from image lists).
NOT_COPIED = ('os_hash_', 'os_glance', 'os_hidden', 'img_signature')


def boot_properties(volume_image_metadata):
    """The properties of a volume's image metadata that say how to boot it."""
    out = {}
    for key, value in (volume_image_metadata or {}).items():
        if key.startswith(NOT_COPIED):
            continue
        if key in BOOT_PROPERTIES or key.startswith(BOOT_PREFIXES):
            out[key] = value
    return out


def _unavailable(service):
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout,
                    ks_exc.RetriableConnectionFailure) as e:
                raise exception.CloudUnavailable(service=service,
                                                 reason=str(e))
            except (nova_exc.ClientException,
                    cinder_exc.ClientException) as e:
                if getattr(e, 'code', 0) and int(e.code) >= 500:
                    raise exception.CloudUnavailable(service=service,
                                                     reason=str(e))
                raise
            except ks_exc.HttpError as e:
                if e.http_status >= 500:
                    raise exception.CloudUnavailable(service=service,
                                                     reason=str(e))
                raise
        return wrapper
    return decorator


def _server(server):
    data = server.to_dict()
    return {'id': data['id'], 'name': data['name'],
            'status': data['status'],
            'host': data.get('OS-EXT-SRV-ATTR:host'),
            'task_state': data.get('OS-EXT-STS:task_state'),
            'fault': (data.get('fault') or {}).get('message')}


class OpenStackCloud(cloud.Cloud):

    def __init__(self, session, conf, trustee=None):
        self.session = session
        self.conf = conf.batches
        self._trustee = trustee
        self.nova = nova_client.Client(NOVA_VERSION, session=session)
        self.cinder = cinder_client.Client(CINDER_VERSION, session=session)
        self.glance = glance_client.Client('2', session=session)

    @_unavailable('Cinder')
    def get_source(self, source_type, source_id):
        try:
            if source_type == 'snapshot':
                item = self.cinder.volume_snapshots.get(source_id)
            else:
                item = self.cinder.volumes.get(source_id)
        except cinder_exc.NotFound:
            raise exception.SourceNotFound(kind=source_type.capitalize(),
                                           id=source_id)
        return {'id': item.id, 'size': item.size, 'status': item.status}

    @_unavailable('Nova')
    def get_flavor(self, flavor):
        try:
            found = self.nova.flavors.find(name=flavor)
        except nova_exc.NotFound:
            try:
                found = self.nova.flavors.get(flavor)
            except nova_exc.NotFound:
                raise exception.FlavorNotFound(flavor=flavor)
        return {'id': found.id, 'name': found.name, 'disk': found.disk}

    @_unavailable('Nova')
    def instances_left(self):
        absolute = {a.name: a.value
                    for a in self.nova.limits.get().absolute}
        limit = absolute.get('maxTotalInstances', -1)
        if limit < 0:
            return None
        return max(0, limit - absolute.get('totalInstancesUsed', 0))

    @_unavailable('Keystone')
    def create_trust(self):
        from keystoneclient.v3 import client as ks_client
        keystone = ks_client.Client(session=self.session)
        roles = [r.strip() for r in self.conf.runner_roles.split(',')
                 if r.strip()]
        trust = keystone.trusts.create(
            trustor_user=self.session.get_user_id(),
            trustee_user=self._trustee(),
            project=self.session.get_project_id(),
            role_names=roles, impersonation=True)
        return trust.id

    @_unavailable('Keystone')
    def delete_trust(self, trust_id):
        from keystoneclient.v3 import client as ks_client
        try:
            ks_client.Client(session=self.session).trusts.delete(trust_id)
        except ks_exc.NotFound:
            pass

    @_unavailable('Cinder')
    def create_origin_volume(self, source_type, source_id, size, name):
        kwargs = {'snapshot_id': source_id} if source_type == 'snapshot' \
            else {'source_volid': source_id}
        volume = self.cinder.volumes.create(
            size, name=name, volume_type=self.conf.volume_type,
            metadata={'fastboot_cacheable': 'true'}, **kwargs)
        return volume.id

    @_unavailable('Cinder')
    def get_volume(self, volume_id):
        try:
            volume = self.cinder.volumes.get(volume_id)
        except cinder_exc.NotFound:
            return None
        return {'id': volume.id, 'status': volume.status}

    @_unavailable('Cinder')
    def set_volume_readonly(self, volume_id):
        self.cinder.volumes.update_readonly_flag(volume_id, True)

    @_unavailable('Cinder')
    def delete_volume(self, volume_id):
        try:
            self.cinder.volumes.delete(volume_id)
        except cinder_exc.NotFound:
            pass

    @_unavailable('Glance')
    def create_image(self, volume_id, name):
        # A volume made from a bootable snapshot keeps the snapshot's
        # image metadata (kernel, ramdisk, command line...): without them
        # a guest that boots a kernel directly would not boot.
        volume = self.cinder.volumes.get(volume_id)
        properties = boot_properties(
            getattr(volume, 'volume_image_metadata', None))
        properties['trait:%s' % self.conf.cache_trait] = 'required'
        image = self.glance.images.create(
            name=name, disk_format='raw', container_format='bare',
            fastboot_origin_volume=volume_id, **properties)
        try:
            # glanceclient reads the data as a stream.
            self.glance.images.upload(image['id'], io.BytesIO(STUB_IMAGE))
        except BaseException:
            # The runner retries: do not leave a queued image per attempt.
            with contextlib.suppress(Exception):
                self.glance.images.delete(image['id'])
            raise
        return image['id']

    @_unavailable('Glance')
    def delete_image(self, image_id):
        try:
            self.glance.images.delete(image_id)
        except glance_exc.HTTPNotFound:
            pass

    @_unavailable('Nova')
    def create_servers(self, name, image_id, flavor_id, count, networks,
                       key_name=None, availability_zone=None,
                       metadata=None):
        nics = networks if isinstance(networks, str) else [
            {'net-id': n['uuid']} for n in networks]
        return self.nova.servers.create(
            name, image_id, flavor_id, min_count=count, max_count=count,
            nics=nics, key_name=key_name,
            availability_zone=availability_zone, meta=metadata or {},
            reservation_id=True)

    @_unavailable('Nova')
    def find_servers(self, name):
        import re
        servers = self.nova.servers.list(
            search_opts={'name': '^%s(-[0-9]+)?$' % re.escape(name)})
        return [_server(s) for s in servers]

    @_unavailable('Nova')
    def get_server(self, server_id):
        try:
            return _server(self.nova.servers.get(server_id))
        except nova_exc.NotFound:
            return None

    @_unavailable('Nova')
    def delete_server(self, server_id):
        try:
            self.nova.servers.delete(server_id)
        except nova_exc.NotFound:
            pass
