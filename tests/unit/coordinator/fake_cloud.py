"""A fake OpenStack behind the :class:`~.cloud.Cloud` interface.

Its state is a JSON file under an flock, so the API process, one or more
``fastboot-runner`` processes and the test see one cloud (the process
tests kill a runner between Nova's answer and the runner's record of it).
Snapshots, volumes, images, servers, flavors, quota and trusts behave as
the real services do for what boot batches use: another project's
snapshot is not found, a volume from a snapshot takes ``volume_ticks``
looks to become available, a new server takes ``server_ticks`` looks to
leave BUILD and a deleted one ``delete_ticks`` looks to go (Nova deletes
asynchronously; deleting the trust meanwhile leaves it in ERROR, as the
compute's calls to Cinder and Neutron fail with 401, and its origin
volume cannot be deleted while it is there). Failures are injected by
name (``fail``: a list of ``[call, kind]`` consumed in order; kinds
``500``, ``timeout`` (after the work was done), ``error`` (the next
server goes ERROR)).
"""

import contextlib
import fcntl
import json
import os
import time
import uuid

from fastboot_nova.coordinator.batches import cloud
from fastboot_nova.coordinator import exception

EMPTY = {'snapshots': {}, 'volumes': {}, 'images': {}, 'servers': {},
         'flavors': {'m1.small': {'id': 'f1', 'disk': 1},
                     'm1.tiny': {'id': 'f0', 'disk': 0}},
         'quota': {}, 'trusts': {}, 'fail': [], 'calls': [],
         'volume_ticks': 1, 'server_ticks': 1, 'delete_ticks': 1,
         'hang_after_create': 0}


class VolumeInUse(Exception):
    """Cinder's 400: a volume still attached cannot be deleted."""


class Store:

    def __init__(self, path):
        self.path = path
        if not os.path.exists(path):
            with open(path, 'w') as f:
                json.dump(EMPTY, f)

    @contextlib.contextmanager
    def state(self):
        with open(self.path + '.lock', 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(self.path) as f:
                data = json.load(f)
            yield data
            tmp = self.path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(data, f)
            os.replace(tmp, self.path)

    def read(self):
        with self.state() as data:
            return data

    # -- test helpers ----------------------------------------------------

    def add_snapshot(self, project, size=1, status='available'):
        sid = str(uuid.uuid4())
        with self.state() as data:
            data['snapshots'][sid] = {'size': size, 'status': status,
                                      'project': project}
        return sid

    def set(self, **values):
        with self.state() as data:
            data.update(values)

    def fail(self, call, kind, times=1):
        with self.state() as data:
            data['fail'].extend([[call, kind]] * times)


class FakeCloud(cloud.Cloud):

    def __init__(self, store, project):
        self.store = store
        self.project = project

    def _call(self, data, name):
        data['calls'].append(name)
        for i, (call, kind) in enumerate(data['fail']):
            if call == name:
                del data['fail'][i]
                return kind
        return None

    def _raise(self, kind, name):
        if kind in ('500', 'timeout'):
            raise exception.CloudUnavailable(service='fake',
                                             reason='%s %s' % (name, kind))

    def _simple(self, name):
        with self.store.state() as data:
            kind = self._call(data, name)
        self._raise(kind, name)

    def get_source(self, source_type, source_id):
        self._simple('get_source')
        data = self.store.read()
        table = data['snapshots' if source_type == 'snapshot' else 'volumes']
        item = table.get(source_id)
        if item is None or item['project'] != self.project:
            raise exception.SourceNotFound(kind=source_type.capitalize(),
                                           id=source_id)
        return {'id': source_id, 'size': item['size'],
                'status': item['status']}

    def get_flavor(self, flavor):
        self._simple('get_flavor')
        found = self.store.read()['flavors'].get(flavor)
        if found is None:
            raise exception.FlavorNotFound(flavor=flavor)
        return dict(found, name=flavor)

    def instances_left(self):
        data = self.store.read()
        limit = data['quota'].get(self.project)
        if limit is None:
            return None
        used = sum(1 for s in data['servers'].values()
                   if s['project'] == self.project)
        return max(0, limit - used)

    def create_trust(self):
        tid = uuid.uuid4().hex
        with self.store.state() as data:
            data['trusts'][tid] = self.project
        return tid

    def delete_trust(self, trust_id):
        with self.store.state() as data:
            data['trusts'].pop(trust_id, None)
            for server in data['servers'].values():
                if (server['project'] == self.project and
                        server['task_state'] == 'deleting'):
                    server.update(status='ERROR', task_state=None,
                                  fault='Unauthorized (HTTP 401)')

    def create_origin_volume(self, source_type, source_id, size, name):
        vid = str(uuid.uuid4())
        with self.store.state() as data:
            kind = self._call(data, 'create_origin_volume')
            if kind is None:
                data['volumes'][vid] = {
                    'size': size, 'status': 'creating', 'name': name,
                    'project': self.project, 'readonly': False,
                    'source': source_id, 'multiattach': True,
                    'metadata': {'fastboot_cacheable': 'true'},
                    'ticks': data['volume_ticks']}
        self._raise(kind, 'create_origin_volume')
        return vid

    def get_volume(self, volume_id):
        with self.store.state() as data:
            volume = data['volumes'].get(volume_id)
            if volume is None:
                return None
            if volume['status'] == 'creating':
                volume['ticks'] -= 1
                if volume['ticks'] <= 0:
                    volume['status'] = 'available'
            return {'id': volume_id, 'status': volume['status']}

    def set_volume_readonly(self, volume_id):
        with self.store.state() as data:
            data['volumes'][volume_id]['readonly'] = True

    def delete_volume(self, volume_id):
        with self.store.state() as data:
            images = {i for i, image in data['images'].items()
                      if image['fastboot_origin_volume'] == volume_id}
            if any(s['image'] in images for s in data['servers'].values()):
                raise VolumeInUse(volume_id)
            data['volumes'].pop(volume_id, None)

    def create_image(self, volume_id, name):
        iid = str(uuid.uuid4())
        with self.store.state() as data:
            kind = self._call(data, 'create_image')
            if kind is None:
                data['images'][iid] = {'name': name, 'project': self.project,
                                       'fastboot_origin_volume': volume_id}
        self._raise(kind, 'create_image')
        return iid

    def delete_image(self, image_id):
        with self.store.state() as data:
            data['images'].pop(image_id, None)

    def create_servers(self, name, image_id, flavor_id, count, networks,
                       key_name=None, availability_zone=None,
                       metadata=None):
        with self.store.state() as data:
            kind = self._call(data, 'create_servers')
            if kind != '500':
                for n in range(1, count + 1):
                    status = 'BUILD'
                    if self._call(data, 'server') == 'error':
                        status = 'ERROR'
                    data['servers'][str(uuid.uuid4())] = {
                        'name': name if count == 1 else '%s-%d' % (name, n),
                        'status': status, 'project': self.project,
                        'image': image_id, 'flavor': flavor_id,
                        'networks': networks, 'host': 'host%d' % (n % 2),
                        'ticks': data['server_ticks'], 'task_state': None,
                        'fault': 'No valid host was found.'
                        if status == 'ERROR' else None}
            hang = data['hang_after_create']
        if hang:
            time.sleep(hang)  # the process tests kill the runner here
        self._raise(kind, 'create_servers')
        return 'r-%s' % uuid.uuid4().hex[:8]

    @staticmethod
    def _view(sid, server):
        return {'id': sid, 'name': server['name'],
                'status': server['status'], 'host': server['host'],
                'task_state': server['task_state'],
                'fault': server['fault']}

    @staticmethod
    def _tick(data, sid):
        """One look at a server: it moves on; False once it is gone."""
        server = data['servers'][sid]
        if server['task_state'] == 'deleting':
            server['delete_ticks'] -= 1
            if server['delete_ticks'] <= 0:
                del data['servers'][sid]
                return False
        elif server['status'] == 'BUILD':
            server['ticks'] -= 1
            if server['ticks'] <= 0:
                server['status'] = 'ACTIVE'
        return True

    def find_servers(self, name):
        with self.store.state() as data:
            kind = self._call(data, 'find_servers')
            found = []
            for sid, server in list(data['servers'].items()):
                if server['project'] != self.project:
                    continue
                if ((server['name'] == name or
                        server['name'].startswith(name + '-')) and
                        self._tick(data, sid)):
                    found.append(self._view(sid, server))
        self._raise(kind, 'find_servers')
        return found

    def get_server(self, server_id):
        with self.store.state() as data:
            kind = self._call(data, 'get_server')
            server = data['servers'].get(server_id)
            if server is not None and self._tick(data, server_id):
                server = self._view(server_id, server)
            else:
                server = None
        self._raise(kind, 'get_server')
        return server

    def delete_server(self, server_id):
        with self.store.state() as data:
            self._call(data, 'delete_server')
            server = data['servers'].get(server_id)
            if server is not None and server['task_state'] != 'deleting':
                server.update(task_state='deleting',
                              delete_ticks=data['delete_ticks'])


class FakeCloudFactory:

    def __init__(self, path):
        self.store = Store(path)

    def for_user(self, ctx):
        return FakeCloud(self.store, ctx.project_id)

    def for_trust(self, trust_id):
        project = self.store.read()['trusts'].get(trust_id)
        if project is None:
            raise exception.Forbidden(reason='trust %s not found' % trust_id)
        return FakeCloud(self.store, project)
