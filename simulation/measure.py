"""Measured storms for the calibration: the netns testbed, as root.

``python -m simulation.measure --hosts 1,3,7,15 --rate 10mbit --fanout 2
--json simulation/calibration/measured.json`` runs ``fastboot demo
--hosts H`` (:mod:`fastboot_nova.demo.multihost`, real agents, engines,
coordinator and TCG guests) once per host count, in testbed namespaces
named ``<prefix>-*`` (``--prefix``, default ``sm``), and records beside the
demo's report what the model needs to replay the same run:

* the CPU the guests got: every 0.2 s, the running threads of this run's
  QEMU processes and of the whole machine (``procs_running`` in
  /proc/stat), so the model knows how many other runnable threads (other
  users of the shared cores, this run's daemons) competed with the
  guests; and each guest's CPU seconds;
* the time to all-booted (``storm_seconds``) and the origin's egress, as
  the demo measures them (veth counters).

This module needs the project's environment (it drives the plugin); the
model itself (:mod:`simulation.model`) needs only simpy.
"""

import argparse
import json
import os
import sys
import threading
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')


def _qemu_pids(marker):
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd.startswith(b'qemu-system') and marker.encode() in cmd:
            pids.append(int(pid))
    return pids


def _threads_running(pid):
    n = 0
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        if stat.rsplit(')', 1)[1].split()[0] == 'R':
            n += 1
    return n


def _cpu_seconds(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _procs_running():
    with open('/proc/stat') as f:
        for line in f:
            if line.startswith('procs_running'):
                return int(line.split()[1])
    return 0


class CpuSampler(threading.Thread):
    """Samples the machine's and this run's guests' runnable threads."""

    def __init__(self, marker, interval=0.2):
        super().__init__(daemon=True)
        self.marker = marker
        self.interval = interval
        self.samples = []
        self.cpu = {}
        self._halt = threading.Event()

    def run(self):
        start = time.monotonic()
        while not self._halt.is_set():
            pids = _qemu_pids(self.marker)
            ours = sum(_threads_running(p) for p in pids)
            for p in pids:
                c = _cpu_seconds(p)
                if c is not None:
                    self.cpu[p] = c
            # procs_running counts this sampler too: take it off.
            total = max(_procs_running() - 1, 0)
            self.samples.append((round(time.monotonic() - start, 2),
                                 len(pids), ours, total))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()

    def summary(self):
        live = [s for s in self.samples if s[1]]
        if not live:
            return {}
        other = [max(t - o, 0) for _t, _n, o, t in live]
        return {'samples': len(live),
                'other_running_mean': round(sum(other) / len(other), 3),
                'guest_running_mean': round(
                    sum(s[2] for s in live) / len(live), 3),
                'guest_cpu_seconds': sorted(round(c, 2)
                                            for c in self.cpu.values())}


def _idle_background(seconds=5.0, interval=0.2):
    """Mean runnable threads of the machine before the run (none ours)."""
    vals = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        vals.append(max(_procs_running() - 1, 0))
        time.sleep(interval)
    return round(sum(vals) / len(vals), 3)


def _PatientStorm(multihost):
    """The demo's storm, waiting up to 180 s for its coordinator.

    The demo gives it 30 s; with a load average of 40 on this shared
    machine it took longer.
    """
    class PatientStorm(multihost.Storm):
        def _wait_coordinator(self, proc):
            check = [sys.executable, '-c',
                     'import sys, urllib.error, urllib.request\n'
                     'try:\n'
                     '    urllib.request.urlopen(sys.argv[1], timeout=5)\n'
                     'except urllib.error.HTTPError:\n'
                     '    pass\n',
                     self.coordinator_url]
            deadline = time.monotonic() + 180
            while self.tb.run('host0', check,
                              capture_output=True).returncode:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError('the coordinator did not start')
                time.sleep(0.5)
    return PatientStorm


def measure(hosts, rate, fanout, prefix, vms_per_host=1, timeout=1200):
    from oslo_config import cfg

    from fastboot_nova.conf import fastboot as fastboot_conf
    from fastboot_nova.demo import multihost
    from fastboot_nova import testbed as testbed_mod

    class Storm(_PatientStorm(multihost)):
        def start(self, cleanup):
            # The demo picks a random prefix; ours must be ``prefix``.
            orig = testbed_mod.Testbed

            def testbed(*a, **kw):
                kw['prefix'] = prefix
                return orig(*a, **kw)
            multihost.testbed_mod.Testbed = testbed
            try:
                super().start(cleanup)
            finally:
                multihost.testbed_mod.Testbed = orig

        def boot(self, names, kill_parent_at):
            sampler = CpuSampler(self.workdir)
            sampler.start()
            try:
                return super().boot(names, kill_parent_at)
            finally:
                sampler.stop()
                self.cpu = sampler.summary()

    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf([], project='fastboot', default_config_files=[])
    background = _idle_background()
    saved = multihost.Storm
    multihost.Storm = Storm
    holder = {}
    orig_report = multihost._report

    def report(storm, *a):
        r = orig_report(storm, *a)
        r['cpu'] = storm.cpu
        return r
    multihost._report = report
    try:
        r = multihost.run_multihost_demo(conf, hosts=hosts,
                                         vms_per_host=vms_per_host,
                                         fanout=fanout, rate=rate,
                                         timeout=timeout)
    finally:
        multihost.Storm = saved
        multihost._report = orig_report
    holder.update(r)
    ok = sum(1 for v in r['vms'] if v['ok'] and v['checksum_ok'])
    return {'hosts': hosts, 'vms_per_host': vms_per_host, 'rate': rate,
            'fanout': fanout, 'ok': ok, 'vms': len(r['vms']),
            'storm_seconds': r['storm_seconds'],
            'boot_seconds': sorted(v['boot_seconds'] or 0 for v in r['vms']),
            'origin_egress_bytes': r['origin_egress_bytes'],
            'host_ingress_bytes': {h['name']: h['ingress_bytes']
                                   for h in r['hosts']},
            'parents': {h['name']: h['parent'] for h in r['hosts']},
            'other_running_before': background,
            'errors': sorted({v['error'] for v in r['vms'] if v['error']}),
            'cpu': r['cpu'], 'measured_at': time.strftime(
                '%Y-%m-%dT%H:%M:%SZ', time.gmtime())}


def measure_control(hosts, prefix, seconds=30, fanout=2):
    """Bytes/s the origin sends each host when nothing boots.

    The coordinator runs beside the origin (as in the demo), so the
    agents' heartbeats and tree queries leave through the origin's link
    too; the model adds them to the origin's egress. Measured with the
    VMs created (every host in the image's tree) but not booted.
    """
    import contextlib
    import shutil
    import tempfile

    from fastboot_nova.demo import guest as guest_mod
    from fastboot_nova.demo import multihost
    from fastboot_nova import testbed as testbed_mod

    cache_dir = os.path.join(os.path.expanduser('~'), '.cache', 'fastboot')
    guest = guest_mod.build_guest(cache_dir)
    workdir = tempfile.mkdtemp(prefix='fbm-', dir='/tmp')
    orig = testbed_mod.Testbed

    def testbed(*a, **kw):
        kw['prefix'] = prefix
        return orig(*a, **kw)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        multihost.testbed_mod.Testbed = testbed
        try:
            storm = _PatientStorm(multihost)(guest, hosts, 1, workdir,
                                             fanout, None, None, 60)
            storm.start(cleanup)
        finally:
            multihost.testbed_mod.Testbed = orig
        storm.create_vms()
        storm.tb.reset()
        time.sleep(seconds)
        delta = storm.tb.delta()
    return {'hosts': hosts, 'seconds': seconds,
            'origin_egress_bytes': delta['origin'].tx_bytes,
            'control_bps_per_host': round(
                delta['origin'].tx_bytes / hosts / seconds, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m simulation.measure')
    p.add_argument('--hosts', default='1,3,7,15')
    p.add_argument('--rate', default='10mbit')
    p.add_argument('--fanout', type=int, default=2)
    p.add_argument('--vms-per-host', type=int, default=1)
    p.add_argument('--prefix', default='sm')
    p.add_argument('--timeout', type=int, default=1200,
                   help='seconds a guest may take (the machine is shared: '
                        'the demo default of 180 s is too short at 15 '
                        'hosts)')
    p.add_argument('--json', metavar='FILE', required=True)
    p.add_argument('--control', type=int, metavar='SECONDS',
                   help='instead: measure the control traffic the origin '
                        'sends idle hosts for SECONDS (added to the JSON)')
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        p.error('needs root: it builds network namespaces')
    try:
        hosts = [int(h) for h in args.hosts.split(',')]
    except ValueError:
        p.error('--hosts takes numbers separated by commas')
    data = {'runs': []}
    if os.path.exists(args.json):
        with open(args.json) as f:
            data = json.load(f)
    runs = data['runs']
    if args.control:
        data['control'] = measure_control(hosts[-1], args.prefix,
                                          args.control, args.fanout)
        print(json.dumps(data['control']))
        with open(args.json + '.tmp', 'w') as f:
            json.dump(data, f, indent=1)
        os.replace(args.json + '.tmp', args.json)
        return 0
    for h in hosts:
        run = measure(h, args.rate, args.fanout, args.prefix,
                      args.vms_per_host, args.timeout)
        print(json.dumps(run), flush=True)
        runs.append(run)
        with open(args.json + '.tmp', 'w') as f:
            json.dump(data, f, indent=1)
        os.replace(args.json + '.tmp', args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
