"""Builds a host's agent from its configuration and keeps its token.

The coordinator issues a host token once, at registration. It is kept in
``<state_path>/coordinator-token`` (mode 0600) so that every process of
the host (the agent, ``fastboot create``, nova-compute) speaks as the same
host, and is never logged.
"""

import os
import socket

from keystoneauth1 import loading as ks_loading

from fastboot_nova.conf import coordinator as coordinator_conf
from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.hierarchy import agent as agent_mod
from fastboot_nova.hierarchy import client as client_mod

TOKEN_FILE = 'coordinator-token'
EVENTS_FILE = 'reparent-events.jsonl'
FOLLOW_LOCK_FILE = 'coordinator-follow.lock'


def host_name(conf, default=None):
    """``[fastboot] host_name``, else ``default`` (Nova's host), else ours."""
    return (conf.fastboot.host_name or default or
            socket.gethostname().split('.')[0])


def _token_path(engine):
    return os.path.join(engine.state_path, TOKEN_FILE)


def load_token(engine):
    try:
        with open(_token_path(engine), encoding='utf-8') as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def save_token(engine, token):
    fileutils.write_private(_token_path(engine), token)


def keystone_session(conf):
    """A keystoneauth1 session from ``[fastboot_coordinator]``, or None.

    The OpenStack way to talk to a keystone-authenticated service, as Nova
    loads ``[placement]``: the auth plugin gets, caches and renews the
    token; None when no ``auth_type`` is set (shared_secret).
    """
    coordinator_conf.register_client_opts(conf)
    group = coordinator_conf.CLIENT_GROUP
    if not conf[group].auth_type:
        return None
    auth = ks_loading.load_auth_from_conf_options(conf, group)
    return ks_loading.load_session_from_conf_options(conf, group, auth=auth)


def make_agent(conf, engine, session=None, host=None):
    """The agent of this host, or None without ``coordinator_url``.

    :param host: the host's name when ``[fastboot] host_name`` is unset
        (nova-compute passes its ``[DEFAULT] host``).
    """
    opts = conf.fastboot
    if not opts.coordinator_url:
        return None
    if not opts.export_address:
        raise exception.FastbootException(
            'hierarchical attaching needs [fastboot] export_address: child '
            'hosts read this host\'s caches over NBD on that address')
    client = client_mod.CoordinatorClient(
        opts.coordinator_url, host_name(conf, host),
        secret=opts.coordinator_secret, token=load_token(engine),
        timeout=opts.coordinator_timeout,
        session=session or keystone_session(conf))
    return agent_mod.HostAgent(
        engine, client, address=opts.export_address,
        failure_domain=opts.failure_domain,
        interval=opts.heartbeat_interval,
        events_path=os.path.join(engine.state_path, EVENTS_FILE),
        lock_path=os.path.join(engine.state_path, FOLLOW_LOCK_FILE),
        on_token=lambda token: save_token(engine, token))
