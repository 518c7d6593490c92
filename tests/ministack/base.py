"""Talk to a running ministack the way a user does: the openstack CLI.

The tests need ``python3 -m ministack up`` first (``tox -e ministack``
does it) and fail, not skip, when it is not up: a skipped scenario would
hide a broken cloud.
"""

import os

import testtools
from testtools import content

from ministack.scenarios import cloud as cloud_mod
from ministack import stack as stack_mod


#: Error lines of one service's log attached to a failed test.
ERROR_LINES = 40


class MinistackTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.stack = stack_mod.Stack()
        self.layout = self.stack.layout
        if not (self.layout.run_dir / 'openrc-demo').exists():
            self.fail('ministack is not up: run python3 -m ministack up')
        self.cloud = cloud_mod.Cloud(self.stack)
        # down (tox's commands_post) removes the logs: a failure carries
        # the errors the services logged while the test ran.
        self._log_sizes = {log: log.stat().st_size
                           for log in self.layout.logs.glob('*.log')}
        self.addOnException(self._attach_service_errors)

    def _attach_service_errors(self, exc_info):
        for log in sorted(self.layout.logs.glob('*.log')):
            with open(log, 'rb') as f:
                f.seek(self._log_sizes.get(log, 0))
                new = f.read().decode('utf-8', 'replace').splitlines()
            errors = [line for line in new
                      if ' ERROR ' in line or ' CRITICAL ' in line]
            if len(errors) > ERROR_LINES:
                errors[ERROR_LINES:] = [
                    '... %d more' % (len(errors) - ERROR_LINES)]
            if errors:
                self.addDetail('errors in ' + log.name,
                               content.text_content('\n'.join(errors)))

    # The same steps as ministack.scenarios.cloud, failing the test.

    def openstack(self, *args, user='demo', parse=True, timeout=600):
        try:
            return self.cloud.openstack(*args, user=user, parse=parse,
                                        timeout=timeout)
        except cloud_mod.ScenarioError as e:
            self.fail(str(e))

    def wait_for(self, what, check, timeout=600, interval=2):
        try:
            return self.cloud.wait_for(what, check, timeout, interval)
        except cloud_mod.ScenarioError as e:
            self.fail(str(e))

    def libvirt_domains(self):
        return self.cloud.domains()

    def console_log(self, host, server_id):
        """The serial console file libvirt wrote for the server.

        Read from the compute's instances directory: the guest powers off
        once it has printed its checksum, and Nova's console API answers
        only while the domain runs.
        """
        return self.cloud.console_log(host, server_id)


def full_only(reason):
    """Skip unless MINISTACK_FULL=1: for tests CI runs elsewhere.

    ``reason`` names where CI covers what the test checks, so the skip
    message says it; ``MINISTACK_FULL=1 tox -e ministack`` runs them all.
    """
    return testtools.skipUnless(
        os.environ.get('MINISTACK_FULL') == '1',
        'MINISTACK_FULL=1 runs it; in CI: %s' % reason)
