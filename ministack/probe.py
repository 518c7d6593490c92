"""Questions to the running cloud, asked as admin (runs in the venv).

``python -m ministack.probe computes N TIMEOUT``: wait until N nova-compute
services are up and their compute nodes exist.
"""

import os
import sys
import time

from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session


def admin_session(environ):
    auth = v3.Password(
        auth_url=environ['OS_AUTH_URL'], username=environ['OS_USERNAME'],
        password=environ['OS_PASSWORD'],
        project_name=environ['OS_PROJECT_NAME'],
        user_domain_name='Default', project_domain_name='Default')
    return ks_session.Session(auth=auth)


def compute_hosts(sess):
    """Host names of the nova-compute services that are up."""
    r = sess.get('/os-services?binary=nova-compute',
                 endpoint_filter={'service_type': 'compute'})
    r.raise_for_status()
    return sorted(s['host'] for s in r.json()['services']
                  if s['state'] == 'up' and s['status'] == 'enabled')


def provider_hosts(sess):
    """Names of placement's resource providers: one per compute node.

    A service is "up" a few seconds before its resource tracker creates
    the compute node record, and ``nova-manage cell_v2 discover_hosts``
    maps only hosts that have one. Nova's own hypervisor list cannot
    tell: it hides compute nodes whose host is not mapped yet, which is
    what discover_hosts is about to do. The tracker creates the resource
    provider (named after the node) right after the record, so a
    provider means a record.
    """
    r = sess.get('/resource_providers',
                 endpoint_filter={'service_type': 'placement'})
    r.raise_for_status()
    return sorted(p['name'] for p in r.json()['resource_providers'])


def computes_ready(sess):
    """Hosts whose service is up and whose compute node exists."""
    return sorted(set(compute_hosts(sess)) & set(provider_hosts(sess)))


def warm_neutron(sess):
    """List networks once, so neutron-server configures its ORM mappers.

    neutron 29 with SQLAlchemy 2.1: ``get_ports`` reads the backref
    ``Port.port_forwardings`` before its first query, and a backref exists
    only once the mappers are configured. In a fresh API process whose
    first request is a port list (Nova's server show/list) every port list
    fails with AttributeError until some other query ran; a network list
    runs one.
    """
    r = sess.get('/v2.0/networks', endpoint_filter={'service_type': 'network'})
    r.raise_for_status()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    sess = admin_session(os.environ)
    if argv[0] == 'warm-neutron':
        warm_neutron(sess)
        return 0
    want, timeout = int(argv[1]), float(argv[2])
    deadline = time.monotonic() + timeout
    while True:
        hosts = computes_ready(sess)
        if len(hosts) >= want:
            print(' '.join(hosts))
            return 0
        if time.monotonic() > deadline:
            print('only %d of %d computes up with a compute node: %s'
                  % (len(hosts), want, hosts))
            return 1
        time.sleep(1)


if __name__ == '__main__':
    sys.exit(main())
