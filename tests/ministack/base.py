"""Talk to a running ministack the way a user does: the openstack CLI.

The tests need ``python3 -m ministack up`` first (``tox -e ministack``
does it) and fail, not skip, when it is not up: a skipped scenario would
hide a broken cloud.
"""

import json
import os
import subprocess
import time

import testtools

from ministack import layout as layout_mod
from ministack import scenario
from ministack import stack as stack_mod


class MinistackTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.stack = stack_mod.Stack()
        self.layout = self.stack.layout
        if not (self.layout.run_dir / 'openrc-demo').exists():
            self.fail('ministack is not up: run python3 -m ministack up')
        self.cloud = scenario.Cloud(self.stack)

    def openstack(self, *args, user='demo', parse=True, timeout=600):
        env = dict(os.environ)
        env.update(self.stack.venv_env())
        env.update(self.stack.openrc(user))
        argv = [str(self.layout.bin('openstack')), *args]
        if parse:
            argv += ['-f', 'json']
        result = subprocess.run(argv, capture_output=True, text=True,
                                env=env, timeout=timeout)
        if result.returncode:
            self.fail('openstack %s failed: %s' % (' '.join(args),
                                                   result.stderr[-2000:]))
        return json.loads(result.stdout) if parse and result.stdout else None

    def wait_for(self, what, check, timeout=600, interval=2):
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail('timed out waiting for %s' % what)
            time.sleep(interval)

    def libvirt_domains(self):
        out = {}
        for host in layout_mod.COMPUTES:
            uri = 'qemu:///system?socket=%s' % (
                self.layout.data('libvirt-' + host) / 'run' / 'libvirt-sock')
            out[host] = subprocess.run(
                ['virsh', '-c', uri, 'list', '--all', '--name'],
                capture_output=True, text=True, check=True).stdout.split()
        return out

    def console_log(self, host, server_id):
        """The serial console file libvirt wrote for the server.

        Read from the compute's instances directory: the guest powers off
        once it has printed its checksum, and Nova's console API answers
        only while the domain runs.
        """
        path = (self.layout.data('compute-' + host) / 'instances'
                / server_id / 'console.log')
        return path.read_text(errors='replace')


def full_only(reason):
    """Skip unless MINISTACK_FULL=1: for tests CI runs elsewhere.

    ``reason`` names where CI covers what the test checks, so the skip
    message says it; ``MINISTACK_FULL=1 tox -e ministack`` runs them all.
    """
    return testtools.skipUnless(
        os.environ.get('MINISTACK_FULL') == '1',
        'MINISTACK_FULL=1 runs it; in CI: %s' % reason)
