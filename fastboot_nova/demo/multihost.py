"""``fastboot demo --hosts H``: a boot storm over a tree of host caches.

On one machine, as root:

1. a testbed of network namespaces: an origin and H hosts on a bridge
   (optionally rate-limited links), see :mod:`fastboot_nova.testbed`;
2. in the origin namespace, the origin "array" (NBD over TCP) and the
   coordinator (its own database, shared-secret auth);
3. in each host namespace, real processes: ``fastboot agent`` and, through
   ``fastboot create``, the host's engine, exporting its cache over NBD on
   the host's address, authenticated with a pre-shared key made for the
   run (NBD over TLS-PSK);
4. VMs are created host after host, so each host joins the image's tree
   when its first VM is made; then every guest boots at once, in its
   host's namespace;
5. optionally, an inner host's cache daemon is killed mid-storm;
6. the report adds, per host, its parent and the bytes it received, the
   origin's egress, the fan-out and the re-parenting events.

Bytes are counted on the veth links, so they are what crossed the
(emulated) network.
"""

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from fastboot_nova.demo import guest as guest_mod
from fastboot_nova.demo import notice
from fastboot_nova.demo import origin as origin_mod
from fastboot_nova.demo import vm as vm_mod
from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.storage.qemu import daemon as daemon_mod
from fastboot_nova.storage.qemu import engine as engine_mod
from fastboot_nova import testbed as testbed_mod

LOG = logging.getLogger(__name__)

IMAGE_NAME = 'demo-image'
ORIGIN_PORT = 10809
EXPORT_PORT = 10809
COORDINATOR_PORT = 8790
COORDINATOR_START_TIMEOUT = 120
AGENT_INTERVAL = 0.5
MAX_HOSTS = 15
FASTBOOT = [sys.executable, '-m', 'fastboot_nova.cmd.cli']
COORDINATOR = [sys.executable, '-m', 'fastboot_nova.coordinator.cmd']
MANAGE = [sys.executable, '-m', 'fastboot_nova.coordinator.manage']


def _write_conf(path, sections):
    # It holds the shared secret: 0600 from the first byte, no symlink.
    text = ''.join(
        '[%s]\n%s\n' % (section, ''.join('%s = %s\n' % kv
                                          for kv in values.items()))
        for section, values in sections.items())
    fileutils.write_private(path, text)


def write_psk(path, identity='fastboot'):
    """A fresh pre-shared key file (QEMU's ``identity:hexkey``), 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w', encoding='ascii') as f:
        f.write('%s:%s\n' % (identity, secrets.token_hex(32)))
    return path


class Storm:
    """Everything one multi-host demo run starts, and its teardown."""

    def __init__(self, guest, hosts, vms_per_host, workdir, fanout, rate,
                 progress, timeout):
        self.guest = guest
        self.hosts = hosts
        self.vms_per_host = vms_per_host
        self.workdir = workdir
        self.fanout = fanout
        self.rate = rate
        self.progress = progress
        self.timeout = timeout
        self.secret = secrets.token_hex(16)
        self.procs = []
        self.tb = None

    # -- set-up ----------------------------------------------------------

    def start(self, cleanup):
        # The origin's link is shaped like the hosts': the array's NIC.
        self.tb = testbed_mod.Testbed(self.hosts, rate=self.rate,
                                      origin_rate=self.rate)
        self.tb.create()
        cleanup.callback(self.tb.cleanup)
        notice.notify(self.progress, 'testbed %s: origin %s, %d hosts%s',
                      self.tb.prefix, self.tb.origin.address, self.hosts,
                      ' at %s' % self.rate if self.rate else '')
        self.psk_file = write_psk(os.path.join(self.workdir, 'exports.psk'))
        self._start_origin(cleanup)
        self._start_coordinator(cleanup)
        for i in range(self.hosts):
            self._start_agent(i, cleanup)

    def _start_origin(self, cleanup):
        run_dir = os.path.join(self.workdir, 'origin')
        os.makedirs(run_dir)
        self.origin = origin_mod.OriginServer(
            self.guest.image, export='demo', host=self.tb.origin.address,
            port=ORIGIN_PORT, run_dir=run_dir)
        self.origin.daemon.execute = self.tb.execute_in('origin')
        self.origin.start()
        cleanup.callback(self.origin.stop)

    def _start_coordinator(self, cleanup):
        path = os.path.join(self.workdir, 'coordinator')
        os.makedirs(path)
        self.coordinator_conf = os.path.join(path, 'coordinator.conf')
        _write_conf(self.coordinator_conf, {
            'coordinator': {'state_path': path,
                            'bind_host': self.tb.origin.address,
                            'bind_port': COORDINATOR_PORT,
                            'auth_strategy': 'shared_secret',
                            'shared_secret': self.secret,
                            'fanout': self.fanout},
            'database': {'connection': 'sqlite:///%s/coordinator.sqlite' %
                         path}})
        self.tb.run('origin', MANAGE + ['--config-file',
                                        self.coordinator_conf, 'db', 'sync'],
                    check=True, capture_output=True)
        log = open(os.path.join(path, 'coordinator.log'), 'wb')
        cleanup.callback(log.close)
        proc = self.tb.popen('origin', COORDINATOR + [
            '--config-file', self.coordinator_conf], stdout=log,
            stderr=subprocess.STDOUT)
        self._track(proc, cleanup)
        self.coordinator_url = 'http://%s:%d/v1' % (self.tb.origin.address,
                                                    COORDINATOR_PORT)
        self._wait_coordinator(proc)

    def _wait_coordinator(self, proc):
        # Any HTTP answer (401 without the secret) means it is up.
        check = [sys.executable, '-c',
                 'import sys, urllib.error, urllib.request\n'
                 'try:\n'
                 '    urllib.request.urlopen(sys.argv[1], timeout=1)\n'
                 'except urllib.error.HTTPError:\n'
                 '    pass\n',
                 self.coordinator_url]
        # uWSGI imports the API once in its master, then forks the
        # workers: about 5 s idle, over 20 s on a loaded machine.
        deadline = time.monotonic() + COORDINATOR_START_TIMEOUT
        while self.tb.run('host0', check, capture_output=True).returncode:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = os.path.join(self.workdir, 'coordinator',
                                   'coordinator.log')
                with open(log, errors='replace') as f:
                    tail = f.read()[-600:]
                raise exception.FastbootException(
                    'the coordinator did not start: %s' % tail)
            time.sleep(0.2)

    def host_conf(self, i):
        return os.path.join(self.workdir, 'h%d.conf' % i)

    def state_path(self, i):
        return os.path.join(self.workdir, 'h%d' % i)

    def _start_agent(self, i, cleanup):
        host = self.tb.hosts[i]
        os.makedirs(self.state_path(i))
        _write_conf(self.host_conf(i), {
            'fastboot': {
                'state_path': self.state_path(i),
                'export_address': host.address,
                'export_port_min': EXPORT_PORT,
                'export_port_max': EXPORT_PORT,
                'export_auth': 'psk',
                'coordinator_url': self.coordinator_url,
                'coordinator_secret': self.secret,
                'host_name': host.name,
                'heartbeat_interval': AGENT_INTERVAL},
            'fastboot_qemu': {
                'export_psk_file': self.psk_file,
                'export_psk_identity': 'fastboot'}})
        log = open(os.path.join(self.workdir, 'h%d-agent.log' % i), 'wb')
        cleanup.callback(log.close)
        proc = self.tb.popen(host, FASTBOOT + [
            '--config-file', self.host_conf(i), 'agent'], stdout=log,
            stderr=subprocess.STDOUT)
        self._track(proc, cleanup)
        cleanup.callback(self._stop_engine, i)

    def _track(self, proc, cleanup):
        self.procs.append(proc)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        cleanup.callback(stop)

    def _daemons(self, i):
        """The cache daemon of host ``i`` and its export relay."""
        return (daemon_mod.StorageDaemon(self.state_path(i)),
                daemon_mod.StorageDaemon(os.path.join(
                    self.state_path(i), engine_mod.RELAY_DIR)))

    def _stop_engine(self, i):
        for daemon in reversed(self._daemons(i)):
            daemon.stop()

    # -- the storm -------------------------------------------------------

    def cli(self, i, *argv):
        proc = self.tb.run(self.tb.hosts[i], FASTBOOT + [
            '--config-file', self.host_conf(i)] + list(argv),
            capture_output=True, text=True)
        if proc.returncode:
            raise exception.FastbootException(
                'host%d: fastboot %s: %s' % (i, ' '.join(argv),
                                             proc.stderr.strip()))
        return proc.stdout

    def create_vms(self):
        names = {}
        for i in range(self.hosts):
            names[i] = ['h%d-vm%d' % (i, v + 1)
                        for v in range(self.vms_per_host)]
            for name in names[i]:
                self.cli(i, 'create', name, IMAGE_NAME, self.origin.url)
        # Let every agent take its final assignment (the tree changes as
        # hosts join) before the guests read anything.
        time.sleep(3 * AGENT_INTERVAL)
        return names

    def tree(self):
        out = self.tb.run('host0', [
            sys.executable, '-c',
            'import json, sys, urllib.request\n'
            'req = urllib.request.Request(sys.argv[1], headers={'
            '"X-Fastboot-Secret": sys.argv[2]})\n'
            'print(urllib.request.urlopen(req, timeout=5).read().decode())',
            '%s/volumes/%s/tree' % (self.coordinator_url, IMAGE_NAME),
            self.secret], capture_output=True, text=True)
        if out.returncode:
            LOG.warning('Could not read the tree: %s', out.stderr.strip())
            return {}
        return json.loads(out.stdout)

    def boot(self, names, kill_parent_at):
        log_dir = os.path.join(self.workdir, 'logs')
        os.makedirs(log_dir)
        specs = []
        self.vm_host = {}
        for i, vms in names.items():
            prefix = self.tb.argv(self.tb.hosts[i])
            for name in vms:
                self.vm_host[name] = self.tb.hosts[i].name
                disk = os.path.join(self.state_path(i), 'vms',
                                    name + '.qcow2')
                specs.append((name, disk,
                              os.path.join(log_dir, name + '.log'), prefix))
        killed = {}
        if kill_parent_at is not None:
            timer = threading.Timer(kill_parent_at, self._kill_parent,
                                    [killed])
            timer.start()
        self.tb.reset()
        started = time.monotonic()
        results = vm_mod.boot_many(self.guest, specs, timeout=self.timeout)
        seconds = time.monotonic() - started
        if kill_parent_at is not None:
            timer.cancel()
        for r in results:
            if not r.ok:
                notice.notify(self.progress, '%s failed: %s (console log %s)',
                              r.name, r.error, r.console_log)
        return results, seconds, self.tb.delta(), killed

    def _kill_parent(self, killed):
        """Kill the daemons of the inner host with the most children.

        Both die, as with a host failure: the relay alone would keep
        accepting children's connections for a cache that is gone.
        """
        tree = self.tree()
        inner = sorted((h for h in tree.get('hosts', []) if h['children']),
                       key=lambda h: -len(h['children']))
        if not inner:
            LOG.warning('No inner host to kill: the tree is flat')
            return
        victim = inner[0]
        i = next(n for n, h in enumerate(self.tb.hosts)
                 if h.name == victim['host'])
        pids = [d.pid() for d in self._daemons(i)]
        if pids[0]:
            for pid in reversed(pids):
                if pid:
                    os.kill(pid, signal.SIGKILL)
            killed.update(host=victim['host'], time=time.time(),
                          children=victim['children'])
            notice.notify(self.progress, 'killed the cache daemon of %s '
                          '(parent of %s)', victim['host'],
                          ', '.join(victim['children']))

    def events(self):
        result = []
        for i, host in enumerate(self.tb.hosts):
            path = os.path.join(self.state_path(i),
                                'reparent-events.jsonl')
            with contextlib.suppress(FileNotFoundError), open(path) as f:
                for line in f:
                    event = json.loads(line)
                    event['host'] = host.name
                    result.append(event)
        return sorted(result, key=lambda e: e['time'])


def run_multihost_demo(conf, hosts, vms_per_host=2, report=None,
                       cache_dir=None, keep=False, progress=None,
                       kill_parent_at=None, fanout=3, rate=None,
                       timeout=vm_mod.DEFAULT_TIMEOUT):
    """Run the storm over ``hosts`` emulated hosts; return the report."""
    if os.geteuid() != 0:
        raise exception.FastbootException(
            'fastboot demo --hosts needs root: it creates network '
            'namespaces (run it as root, or without --hosts)')
    if not 1 <= hosts <= MAX_HOSTS:
        raise exception.FastbootException(
            'the demo emulates 1 to %d hosts, not %s' % (MAX_HOSTS, hosts))
    if not 1 <= vms_per_host <= 8:
        raise exception.FastbootException(
            'the demo boots 1 to 8 VMs per host, not %s' % vms_per_host)
    if kill_parent_at is not None and kill_parent_at < 0:
        raise exception.FastbootException(
            '--kill-parent-at must be a number of seconds >= 0')
    cache_dir = cache_dir or os.path.join(os.path.expanduser('~'), '.cache',
                                          'fastboot')
    os.makedirs(cache_dir, exist_ok=True)
    guest = guest_mod.build_guest(cache_dir, progress=progress)
    workdir = tempfile.mkdtemp(prefix='fbm-', dir='/tmp')
    with contextlib.ExitStack() as cleanup:
        if not keep:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        storm = Storm(guest, hosts, vms_per_host, workdir, fanout, rate,
                      progress, timeout)
        storm.start(cleanup)
        started = time.monotonic()
        names = storm.create_vms()
        create_seconds = time.monotonic() - started
        tree = storm.tree()
        notice.notify(progress, 'tree: %s', ', '.join(
            '%s<-%s' % (h['host'], h['parent'] or 'origin')
            for h in tree.get('hosts', [])))
        notice.notify(progress, 'booting %d guests on %d hosts at once',
                      hosts * vms_per_host, hosts)
        results, seconds, delta, killed = storm.boot(names, kill_parent_at)
        result = _report(storm, guest, tree, results, seconds, delta,
                         killed)
        result['create_seconds'] = round(create_seconds, 3)
        if keep:
            result['work_dir'] = workdir
            # Leave the processes to the operator: drop every callback.
            cleanup.pop_all()
    if report is not None:
        with open(report, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
    return result


def _report(storm, guest, tree, results, seconds, delta, killed):
    parents = {h['host']: h['parent'] for h in tree.get('hosts', [])}
    victim = (killed or {}).get('host')
    return {
        'vms': [{'name': r.name,
                 'host': storm.vm_host[r.name],
                 'boot_seconds': (round(r.boot_seconds, 3)
                                  if r.boot_seconds is not None else None),
                 'ok': r.ok, 'checksum_ok': r.checksum_ok,
                 'error': r.error,
                 # Its host's cache daemon was killed on purpose.
                 'on_killed_host': storm.vm_host[r.name] == victim}
                for r in results],
        'hosts': [{'name': h.name, 'parent': parents.get(h.name),
                   'ingress_bytes': delta[h.name].rx_bytes}
                  for h in storm.tb.hosts],
        'origin_egress_bytes': delta['origin'].tx_bytes,
        'origin_bytes_read': storm.origin.bytes_read(),
        'image_bytes': guest.image_size,
        'fanout': storm.fanout,
        'export_auth': 'psk',
        'rate': storm.rate,
        'storm_seconds': round(seconds, 3),
        'killed_parent': killed or None,
        'reparent_events': storm.events(),
    }
