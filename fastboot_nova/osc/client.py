"""A small REST client of the coordinator's ``/v1/batches``.

One method per call, on the keystoneauth session OSC gives; errors become
osc-lib's CommandError with the API's own message.
"""

import uuid

from osc_lib import exceptions

SERVICE_TYPE = 'fastboot'


class Client:

    def __init__(self, session, region_name=None, interface=None):
        self.session = session
        self.filter = {'service_type': SERVICE_TYPE,
                       'region_name': region_name,
                       'interface': interface or 'public'}

    def _call(self, method, path, body=None, headers=None):
        resp = self.session.request(
            path, method, json=body, headers=headers or {},
            endpoint_filter=self.filter, raise_exc=False)
        if resp.status_code >= 400:
            try:
                message = resp.json()['error']['message']
            except (ValueError, KeyError, TypeError):
                message = resp.text
            raise exceptions.CommandError('%d %s' % (resp.status_code,
                                                     message))
        return resp.json() if resp.content else None

    def batch_create(self, body, idempotency_key=None):
        key = idempotency_key or str(uuid.uuid4())
        return self._call('POST', '/v1/batches', body,
                          {'Idempotency-Key': key})['batch']

    def batch_list(self, all_projects=False):
        path = '/v1/batches' + ('?all_projects=true' if all_projects else '')
        return self._call('GET', path)['batches']

    def batch_show(self, batch_id):
        return self._call('GET', '/v1/batches/%s' % batch_id)['batch']

    def batch_delete(self, batch_id, purge=False):
        path = '/v1/batches/%s' % batch_id
        return self._call('DELETE', path + ('?purge=true' if purge else ''))

    def batch_timeline(self, batch_id):
        return self._call('GET',
                          '/v1/batches/%s/timeline' % batch_id)['timeline']
