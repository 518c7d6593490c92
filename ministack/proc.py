"""Start, find and stop the processes of a ministack, by pid file.

Every service runs in the foreground under its own session (so its
children share its process group), with stdout and stderr in
``logs/<name>.log`` and ``pids/<name>.pid`` holding "<pid> <start time>":
the start time (from /proc) tells our process from an unrelated one that
got the same pid after a reboot or a crash, so ``down`` never signals a
process it did not start.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


class ServiceFailed(Exception):
    """A service did not come up: its name and the tail of its log."""

    def __init__(self, name, reason, log_tail=''):
        self.name = name
        self.reason = reason
        self.log_tail = log_tail
        super().__init__('%s failed to start: %s\n--- tail of its log ---\n%s'
                         % (name, reason, log_tail))


def _start_time(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces.
    return stat.rsplit(')', 1)[1].split()[19]


def log_path(layout, name):
    return layout.logs / (name + '.log')


def log_tail(layout, name, lines=25):
    try:
        with open(log_path(layout, name), errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no log)'


def running(layout, name):
    """The pid of service ``name`` if the process we started still runs."""
    pidfile = layout.pids / (name + '.pid')
    try:
        pid_s, start = pidfile.read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    if _start_time(pid) != start:
        return None
    try:
        with open('/proc/%d/stat' % pid) as f:
            if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                return None
    except OSError:
        return None
    return pid


def start(layout, name, argv, env=None, cwd=None):
    """Start ``argv`` as service ``name`` unless it already runs."""
    pid = running(layout, name)
    if pid:
        return pid
    full_env = dict(os.environ)
    full_env.update(env or {})
    with open(log_path(layout, name), 'ab') as log:
        log.write(('\n=== ministack start: %s\n' % ' '.join(
            str(a) for a in argv)).encode())
        log.flush()
        popen = subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
            start_new_session=True)
    (layout.pids / (name + '.pid')).write_text(
        '%d %s\n' % (popen.pid, _start_time(popen.pid)))
    return popen.pid


def spawn(layout, name, argv, env=None):
    """Start a set-up command in the background; ``finish`` waits for it."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with open(log_path(layout, name), 'ab') as log:
        log.write(('\n=== ministack run: %s\n' % ' '.join(
            str(a) for a in argv)).encode())
        log.flush()
        return subprocess.Popen([str(a) for a in argv],
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=full_env)


def finish(layout, name, popen, timeout=600):
    """Wait for a ``spawn``ed command; its failure names it with its log."""
    try:
        rc = popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()
        raise ServiceFailed(name, '%s did not finish in %d s' % (
            popen.args[0], timeout), log_tail(layout, name))
    if rc:
        raise ServiceFailed(name, '%s exited with %d' % (popen.args[0], rc),
                            log_tail(layout, name))


def run(layout, name, argv, env=None, timeout=600):
    """Run a set-up command to completion, logging into ``name``'s log."""
    finish(layout, name, spawn(layout, name, argv, env), timeout)


def wait(layout, name, ready, timeout=60.0, interval=0.2):
    """Wait until ``ready()`` is true while service ``name`` runs."""
    deadline = time.monotonic() + timeout
    while True:
        if not running(layout, name):
            raise ServiceFailed(name, 'the process exited',
                                log_tail(layout, name))
        try:
            if ready():
                return
        except Exception:  # noqa: S110 - not ready yet, poll again
            pass
        if time.monotonic() > deadline:
            raise ServiceFailed(name, 'not ready after %d s' % timeout,
                                log_tail(layout, name))
        time.sleep(interval)


def port_open(port, host='127.0.0.1'):
    def ready():
        with socket.create_connection((host, port), timeout=1):
            return True
    return ready


def http_ok(url):
    """Ready once the URL answers with any HTTP status below 500."""
    def ready():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError as e:
            return e.code < 500
    return ready


def stop(layout, name, timeout=30.0):
    """Stop service ``name`` (its whole process group) if we started it."""
    pidfile = layout.pids / (name + '.pid')
    pid = running(layout, name)
    if pid:
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while running(layout, name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if running(layout, name):
            _signal_group(pid, signal.SIGKILL)
            while running(layout, name):
                time.sleep(0.1)
        # Children that outlived their leader (same process group).
        _signal_group(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return bool(pid)


def stop_daemon(pidfile, timeout=15.0):
    """Stop a daemon that left our process group (``--daemonize``).

    Signalled only if its command line names ``pidfile``: the pid file is
    ours, but the pid in it may by now be another process's.
    """
    try:
        pid = int(pidfile.read_text().split()[0])
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmdline = f.read().replace(b'\0', b' ')
    except (OSError, ValueError, IndexError):
        return False
    if str(pidfile).encode() not in cmdline:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _running(pid):
                return True
            time.sleep(0.1)
    return True


def _running(pid):
    """Whether ``pid`` exists and is not a zombie waiting for its parent."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rpartition(')')[2].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def rss_kib(pid):
    """Resident memory of ``pid`` and its descendants, in KiB."""
    total = 0
    for p in [pid] + _descendants(pid):
        try:
            with open('/proc/%d/status' % p) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def _descendants(pid):
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def output(argv, check=True, timeout=60):
    """Run a short query command; its stdout."""
    result = subprocess.run([str(a) for a in argv], capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode:
        raise RuntimeError('%s failed (%d): %s' % (
            argv[0], result.returncode, result.stderr.strip()[-500:]))
    return result.stdout
