"""One storm, and the plan: every profile x N x mode in one run.

For each profile (``defaults``: the stock settings; ``tuned``: the
``fastboot-tune generate`` profile written into the same files by
``fastboot-tune apply``), placement and Nova are (re)started on those
files, then for each N and each way of sending (``one``: one request,
``min_count = max_count = N``; ``batches``: bulks of ``bulk_size`` sent
back to back, as ``fastboot-runner`` with ``[batches] bulk_size``
sends them) one storm runs and its servers are deleted before the next:

- per server: seconds from its request to ACTIVE (or ERROR);
- time to all-ACTIVE (the last server's);
- failures grouped by fault message (a refused request counts for every
  server it carried, a server still building at the timeout as "timeout");
- peaks from :mod:`gate.stormnova.sampler`, CPU seconds per service;
- cleanup: after the deletes, no server, no instance directory on any
  compute, no placement usage left.
"""

import collections
import math
import re
import time

from gate.stormnova import client as client_mod
from gate.stormnova import cloud
from gate.stormnova import sampler as sampler_mod

#: A tiny raw "image" (the guest never runs): Nova's image cache still
#: downloads it once per compute and makes a qcow2 disk per server.
IMAGE_BYTES = b'\0' * (1024 * 1024)
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                     r'[0-9a-f]{12}$')


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    # Nearest rank: the smallest value with pct % of them at or below it.
    k = max(0, min(len(ordered) - 1,
                   math.ceil(pct / 100.0 * len(ordered)) - 1))
    return ordered[k]


def _batch_of(prefix, name):
    rest = name[len(prefix):]
    return rest.split('-', 1)[0]


def _send(client, prefix, image, flavor, count, mode, bulk_size):
    """Send the requests; return (batch -> send time, refused faults)."""
    sizes = [count] if mode == 'one' else [
        min(bulk_size, count - i) for i in range(0, count, bulk_size)]
    sent, refused = {}, []
    for i, size in enumerate(sizes):
        batch = 'b%d' % i
        sent[batch] = time.monotonic()
        try:
            client.boot(prefix + batch, image, flavor, size)
        except (client_mod.ApiError, OSError) as e:
            refused += ['request refused: %s' % _short(str(e))] * size
    return sent, refused


def _short(message):
    # Group by message: strip ids and addresses that differ per server.
    message = re.sub(r'[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', message)
    return message[:300]


def storm(client, stack, pids, image, flavor, count, mode, bulk_size,
          timeout, label):
    prefix = 'st%s-' % label
    sampler = sampler_mod.Sampler(stack)
    sampler_mod.reset_db_peak(stack)
    cpu0 = sampler_mod.cpu_by_service(pids)
    sampler.start()
    started = time.monotonic()
    # The sampler runs rabbitmqctl: left running after an error, its next
    # call would start an epmd daemon once the run's own epmd is stopped.
    try:
        sent, refused = _send(client, prefix, image, flavor, count, mode,
                              bulk_size)
        request_s = time.monotonic() - started
        expected = count - len(refused)
        done, servers, list_errors = _poll(client, prefix, sent, started,
                                           expected, started + timeout,
                                           max(1.0, count / 250.0))
    finally:
        sampler.stop()
    cpu1 = sampler_mod.cpu_by_service(pids)
    faults = collections.Counter(refused)
    for s in servers:
        state = done.get(s['id'], (None,))[0]
        if state == 'ERROR':
            faults[_short((s.get('fault') or {}).get('message', 'ERROR, '
                                                     'no fault'))] += 1
        elif state is None:
            faults['timeout: still %s/%s after %d s' % (
                s['status'], s.get('OS-EXT-STS:task_state'),
                timeout)] += 1
    missing = expected - len(servers)
    if missing > 0:
        faults['never listed by Nova'] += missing
    active = [v for v in done.values() if v[0] == 'ACTIVE']
    per_server = [v[1] for v in active]
    result = {
        'label': label, 'servers': count, 'mode': mode,
        'bulk_size': bulk_size if mode == 'batches' else count,
        'requests_s': round(request_s, 2),
        'active': len(active), 'failed': count - len(active),
        'success_rate': round(len(active) / count, 4),
        'faults': dict(faults.most_common()),
        'all_active_s': (round(max(v[2] for v in active), 2)
                         if len(active) == count else None),
        'last_done_s': round(max((v[2] for v in done.values()),
                                 default=0), 2),
        # Server lists the API answered with an error (retried).
        'list_errors': dict(list_errors.most_common()),
        'p50_s': _round(percentile(per_server, 50)),
        'p99_s': _round(percentile(per_server, 99)),
        'cpu_s': {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 2)
                  for k in cpu1},
    }
    result.update(sampler.summary())
    result['cleanup'] = cleanup(client, stack, prefix, servers)
    return result


def _poll(client, prefix, sent, started, expected, deadline, interval):
    """List the storm's servers until ``expected`` are done or timeout.

    A list the API fails (5xx) is counted by message and retried: one
    failed poll is the API's trouble, not a failed server.
    """
    done, servers = {}, []
    errors = collections.Counter()
    while True:
        now = time.monotonic()
        try:
            servers = client.servers(prefix)
        except client_mod.ApiError as e:
            if e.status < 500:
                raise
            errors[_short(str(e))] += 1
        for s in servers:
            if s['id'] not in done and s['status'] in ('ACTIVE', 'ERROR'):
                t0 = sent.get(_batch_of(prefix, s['name']), started)
                done[s['id']] = (s['status'], now - t0, now - started)
        if len(done) >= expected or now > deadline:
            return done, servers, errors
        time.sleep(interval)


def _round(value):
    return None if value is None else round(value, 2)


def cleanup(client, stack, prefix, servers, timeout=600):
    """Delete the storm's servers; what is left after (empty: clean)."""
    started = time.monotonic()
    for s in servers:
        client.delete(s['id'])
    left = servers
    while left and time.monotonic() - started < timeout:
        time.sleep(2)
        left = client.servers(prefix)
        for s in left:
            if s['status'] == 'ERROR' and s.get('OS-EXT-STS:task_state') \
                    is None:
                client.delete(s['id'])
    report = {'delete_s': round(time.monotonic() - started, 1),
              'servers_left': len(left)}
    dirs = []
    for path in stack.layout.run_dir.glob('data/storm-*/instances/*'):
        if UUID_RE.match(path.name):
            dirs.append(str(path))
    report['instance_dirs_left'] = len(dirs)
    used = {rp: {k: v for k, v in u.items() if v}
            for rp, u in client.usages().items()}
    report['placement_usages_left'] = {rp: u for rp, u in used.items() if u}
    report['clean'] = not (left or dirs or report['placement_usages_left'])
    return report


# -- the plan -----------------------------------------------------------------

def tuned_inputs(counts, computes):
    from fastboot_nova import tuning
    # One process of each service on this machine (ministack's layout).
    return tuning.Inputs(servers=max(counts), computes=computes,
                         conductors=1, schedulers=1, api_workers=1,
                         cinder_api_workers=1, placement_workers=1)


def apply_profile(profile_name, files, counts, computes):
    """Apply the tuned profile into ``files``; return what changed."""
    if profile_name != 'tuned':
        return []
    from fastboot_nova import tuning
    profile = tuning.generate(tuned_inputs(counts, computes))
    targets = []
    for key, path in files.items():
        kind = key.split(':', 1)[0]
        targets.append(tuning.ConfigFile(kind, str(path)))
    changes = tuning.apply(profile, targets)
    left = tuning.check(profile, targets)
    if left:
        raise RuntimeError('fastboot-tune check still fails after apply: %s'
                           % left)
    return [c.line() for c in changes]


def run_profile(stack, profile_name, counts, modes, computes, bulk_size,
                timeout_for, log=print):
    hosts = cloud.host_names(computes)
    files = cloud.configure(stack, hosts)
    changes = apply_profile(profile_name, files, counts, computes)
    max_conn = cloud.apply_mariadb(stack, files['mariadb'])
    log('storm: profile %s: %d settings changed, MariaDB max_connections '
        '%d' % (profile_name, len(changes), max_conn))
    started = time.monotonic()
    cloud.start_control(stack, hosts)
    results = []
    try:
        client = client_mod.Client(stack)
        client.wait_computes(hosts, timeout=300 + 30 * computes)
        cloud.discover_hosts(stack)
        _wait_hypervisors(client, computes)
        log('storm: %s control plane up in %.0f s' % (
            profile_name, time.monotonic() - started))
        leftovers = client.servers('st')
        if leftovers:
            # An interrupted run's servers (--keep): not this run's figures.
            log('storm: deleting %d servers left by an earlier run'
                % len(leftovers))
            cleanup(client, stack, 'st', leftovers)
        image = client.ensure_image('storm-tiny', IMAGE_BYTES)
        flavor = client.ensure_flavor('storm.tiny')
        pids = cloud.service_pids(stack, hosts)
        for count in counts:
            for mode in modes:
                label = '%s-%s-%d' % (profile_name[0], mode[0], count)
                r = storm(client, stack, pids, image, flavor, count, mode,
                          bulk_size, timeout_for(count), label)
                r['profile'] = profile_name
                r['computes'] = computes
                log('storm: %-8s N=%-5d %-7s active %d/%d all-ACTIVE %s s '
                    'p50 %s p99 %s peak DB %d peak queue %d clean %s' % (
                        profile_name, count, mode, r['active'], count,
                        r['all_active_s'], r['p50_s'], r['p99_s'],
                        r['peak_db_connections'], r['peak_queue_messages'],
                        r['cleanup']['clean']))
                results.append(r)
    finally:
        cloud.stop_control(stack, hosts)
    return {'profile': profile_name, 'changes': changes,
            'mariadb_max_connections': max_conn, 'storms': results}


def _wait_hypervisors(client, count, timeout=120):
    deadline = time.monotonic() + timeout
    while len(client.hypervisors()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError('only %d of %d hypervisors listed'
                               % (len(client.hypervisors()), count))
        time.sleep(2)
