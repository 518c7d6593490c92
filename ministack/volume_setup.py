"""Wait for cinder-volume and make the multiattach volume type (venv).

``python -m ministack.volume_setup TYPE BACKEND TIMEOUT`` as admin
(OS_* variables): waits until the cinder-volume service of BACKEND is
up, then makes volume type TYPE (``multiattach="<is> True"``, on that
backend) unless it exists, and names the backend in ``__DEFAULT__``.
Idempotent.
"""

import os
import sys
import time

from ministack import probe

FILTER = {'service_type': 'volumev3'}
#: Volume types with extra specs over plain JSON: any 3.x microversion.
HEADERS = {'OpenStack-API-Version': 'volume 3.0'}


def volume_up(sess, backend):
    r = sess.get('/os-services?binary=cinder-volume', endpoint_filter=FILTER,
                 headers=HEADERS)
    r.raise_for_status()
    return any(s['state'] == 'up' and s['host'].endswith('@' + backend)
               for s in r.json()['services'])


def ensure_type(sess, name, backend):
    r = sess.get('/types?is_public=None', endpoint_filter=FILTER,
                 headers=HEADERS)
    r.raise_for_status()
    if any(t['name'] == name for t in r.json()['volume_types']):
        return False
    r = sess.post('/types', endpoint_filter=FILTER, headers=HEADERS, json={
        'volume_type': {
            'name': name, 'os-volume-type-access:is_public': True,
            'description': 'fastboot origins: one volume, many readers',
            'extra_specs': {'multiattach': '<is> True',
                            'volume_backend_name': backend}}})
    r.raise_for_status()
    return True


def name_default_backend(sess, backend):
    """Give ``__DEFAULT__`` the backend's name too.

    Cinder makes a volume of another type from a snapshot (or a volume)
    only when both types name the same ``volume_backend_name``
    (``API._retype_is_possible``); ``__DEFAULT__`` names none.
    """
    r = sess.get('/types/default', endpoint_filter=FILTER, headers=HEADERS)
    r.raise_for_status()
    default = r.json()['volume_type']
    if (default.get('extra_specs') or {}).get(
            'volume_backend_name') == backend:
        return
    r = sess.post('/types/%s/extra_specs' % default['id'],
                  endpoint_filter=FILTER, headers=HEADERS,
                  json={'extra_specs': {'volume_backend_name': backend}})
    r.raise_for_status()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    name, backend, timeout = argv[0], argv[1], float(argv[2])
    sess = probe.admin_session(os.environ)
    deadline = time.monotonic() + timeout
    while not volume_up(sess, backend):
        if time.monotonic() > deadline:
            print('cinder-volume (%s) not up after %d s' % (backend,
                                                          timeout))
            return 1
        time.sleep(1)
    name_default_backend(sess, backend)
    made = ensure_type(sess, name, backend)
    print('volume type %s %s' % (name, 'made' if made else 'exists'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
