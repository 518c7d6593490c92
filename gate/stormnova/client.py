"""The few REST calls a storm makes, with the standard library only.

The benchmark's driver runs in the tox env, not in the services' venv:
a Keystone token (password, admin project) and plain JSON requests are
all it needs.
"""

import json
import time
import urllib.error
import urllib.request


class ApiError(Exception):
    def __init__(self, method, url, status, body):
        self.status = status
        super().__init__('%s %s -> %s: %s' % (method, url, status,
                                              body[:400]))


class Client:
    """Admin client of one storm cloud (token refreshed on 401)."""

    def __init__(self, stack, timeout=300):
        self.stack = stack
        self.timeout = timeout
        self.token = None
        layout = stack.layout
        self.urls = {'compute': layout.url('nova', '/v2.1'),
                     'image': layout.url('glance'),
                     'placement': layout.url('placement')}

    def _authenticate(self):
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': 'admin', 'domain': {'id': 'default'},
                'password': self.stack.password}}},
            'scope': {'project': {'name': 'admin',
                                  'domain': {'id': 'default'}}}}}
        req = urllib.request.Request(
            self.stack.keystone_url() + '/auth/tokens',
            data=json.dumps(body).encode(), method='POST',
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            self.token = r.headers['X-Subject-Token']

    def request(self, service, method, path, body=None, raw=None,
                headers=None, retry=True):
        if self.token is None:
            self._authenticate()
        url = self.urls[service] + path
        hdrs = {'X-Auth-Token': self.token, 'Accept': 'application/json'}
        if service == 'compute':
            hdrs['OpenStack-API-Version'] = 'compute 2.95'
        if service == 'placement':
            hdrs['OpenStack-API-Version'] = 'placement 1.39'
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs['Content-Type'] = 'application/json'
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                text = r.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors='replace')
            if e.code == 401 and retry:
                self.token = None
                return self.request(service, method, path, body, raw,
                                    headers, retry=False)
            raise ApiError(method, url, e.code, text) from None

    # -- Nova -------------------------------------------------------------

    def ensure_flavor(self, name, ram=64, vcpus=1, disk=1):
        for f in self.request('compute', 'GET', '/flavors')['flavors']:
            if f['name'] == name:
                return f['id']
        return self.request('compute', 'POST', '/flavors', {'flavor': {
            'name': name, 'ram': ram, 'vcpus': vcpus, 'disk': disk}}
        )['flavor']['id']

    def boot(self, name, image, flavor, count):
        """One request for ``count`` servers named ``name-<i>``."""
        return self.request('compute', 'POST', '/servers', {'server': {
            'name': name, 'imageRef': image, 'flavorRef': flavor,
            'networks': 'none', 'min_count': count, 'max_count': count,
            'return_reservation_id': True}})

    def servers(self, prefix):
        found = self.request(
            'compute', 'GET', '/servers/detail?all_tenants=1&name=^%s'
            % prefix)['servers']
        return [s for s in found if s['name'].startswith(prefix)]

    def delete(self, server_id):
        try:
            self.request('compute', 'DELETE', '/servers/' + server_id)
        except ApiError as e:
            if e.status != 404:
                raise

    def compute_services(self):
        return self.request('compute', 'GET',
                            '/os-services?binary=nova-compute')['services']

    def hypervisors(self):
        return self.request('compute', 'GET',
                            '/os-hypervisors')['hypervisors']

    # -- Glance and placement -----------------------------------------------

    def ensure_image(self, name, data):
        found = self.request('image', 'GET', '/v2/images?name=' + name)
        if found['images']:
            return found['images'][0]['id']
        image = self.request('image', 'POST', '/v2/images', {
            'name': name, 'disk_format': 'raw', 'container_format': 'bare',
            'visibility': 'public'})
        self.request('image', 'PUT', '/v2/images/%s/file' % image['id'],
                     raw=data,
                     headers={'Content-Type': 'application/octet-stream'})
        return image['id']

    def usages(self):
        """resource provider name -> its usages (all zero when clean)."""
        out = {}
        rps = self.request('placement', 'GET',
                           '/resource_providers')['resource_providers']
        for rp in rps:
            out[rp['name']] = self.request(
                'placement', 'GET', '/resource_providers/%s/usages'
                % rp['uuid'])['usages']
        return out

    def wait_computes(self, hosts, timeout):
        deadline = time.monotonic() + timeout
        want = set(hosts)
        while True:
            up = {s['host'] for s in self.compute_services()
                  if s['state'] == 'up'}
            if want <= up:
                return
            if time.monotonic() > deadline:
                raise TimeoutError('computes not up after %d s: %s'
                                   % (timeout, sorted(want - up)))
            time.sleep(2)
