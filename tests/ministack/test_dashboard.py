"""The Boot Batches panel in a real browser on a real OpenStack (issue 13).

A real Horizon (``django-admin runserver`` with Horizon's own
``openstack_dashboard.settings``) in the environment that runs the tests
(``tox -e ministack`` installs dashboard-requirements.txt), the panel
enabled by hand the way the README says and devstack's
``configure_fastboot_dashboard`` does (the enabled files into
``openstack_dashboard/local/enabled/``, the settings file into
``local/local_settings.d/``, a ``local_settings.py`` naming the
ministack's Keystone); removed again afterwards. Headless Debian
chromium through Selenium logs in through the login form as the demo
user with the real password, opens the panel, launches a batch of 4 from
a bootable volume snapshot, sees the row reach 4/4 ACTIVE (real guests,
fastboot-runner, Nova), opens the timeline and the servers; a second
test submits a count beyond the quota and sees the error next to the
field. Screenshots go to FASTBOOT_BROWSER_OUTPUT/ministack (default
``.dashboard-screenshots/ministack``).
"""

import os
import shutil
import tempfile
import uuid

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

import fastboot_dashboard
from tests.dashboard import browser
from tests.ministack import base
from tests.ministack import batch_helpers

#: MINISTACK_PORT_BASE + this: Horizon's runserver (not a ministack
#: service port, see ministack/layout.py).
HORIZON_OFFSET = 950
#: 4 real TCG guests on a loaded 2-core machine.
ACTIVE_TIMEOUT = 1800

LOCAL_SETTINGS_MARK = ('# By tests/ministack/test_dashboard.py, '
                       'removed after it.')
LOCAL_SETTINGS = LOCAL_SETTINGS_MARK + '''
import os
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
SECRET_KEY = %(secret)r
OPENSTACK_HOST = '127.0.0.1'
OPENSTACK_KEYSTONE_URL = %(keystone)r
OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'
OPENSTACK_SSL_NO_VERIFY = True
SESSION_ENGINE = 'django.contrib.sessions.backends.file'
SESSION_FILE_PATH = %(workdir)r
# Horizon's SCSS theme compiled once and kept between runs.
CACHES = {'default': {
    'BACKEND': 'django.core.cache.backends.filebased.FileBasedCache',
    'LOCATION': os.path.join(%(cache)r, 'django-cache'), 'TIMEOUT': None}}
STATIC_ROOT = os.path.join(%(cache)r, 'static')
COMPRESS_ROOT = STATIC_ROOT
COMPRESS_OFFLINE = False
COMPRESS_ENABLED = True
LOGIN_REDIRECT_URL = '/project/fastboot_batches/'
'''


def _written_here(path):
    """Whether ``path`` is a local_settings.py this test wrote."""
    try:
        with open(path) as f:
            return f.readline().rstrip('\n') == LOCAL_SETTINGS_MARK
    except OSError:
        return False


class TestDashboard(browser.BrowserMixin,
                    batch_helpers.BatchScenarioMixin,
                    base.MinistackTestCase):

    output = os.path.join(browser.OUTPUT, 'ministack')

    def setUp(self):
        super().setUp()
        self.check_browser()
        self.workdir = tempfile.mkdtemp(prefix='fbmsd-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.tmp = self.workdir
        self.horizon_port = self.layout.port_base + HORIZON_OFFSET
        self.horizon_url = 'http://127.0.0.1:%d' % self.horizon_port
        self.enable_panel()
        env = dict(os.environ,
                   DJANGO_SETTINGS_MODULE='openstack_dashboard.settings')
        self.run_horizon(env, self.workdir)
        self.browser = self.start_browser()

    def enable_panel(self):
        """The README's "enable it by hand", in this environment's Horizon.

        Fails if a local_settings.py this test did not write (its first
        line says so: a killed run leaves one) or the panel's files are
        already there: this test does not overwrite a Horizon it did not
        set up.
        """
        import openstack_dashboard
        local = os.path.join(os.path.dirname(openstack_dashboard.__file__),
                             'local')
        plugin = os.path.dirname(fastboot_dashboard.__file__)
        copies = []
        for sub in ('enabled', 'local_settings.d'):
            for name in sorted(os.listdir(os.path.join(plugin, sub))):
                if name.startswith('_') and not name.startswith('__'):
                    copies.append((os.path.join(plugin, sub, name),
                                   os.path.join(local, sub, name)))
        settings = os.path.join(local, 'local_settings.py')
        if _written_here(settings):
            for _source, target in copies:
                if os.path.exists(target):
                    os.unlink(target)
        for target in [settings] + [t for _s, t in copies]:
            if os.path.exists(target) and not _written_here(target):
                self.fail('%s exists: not a Horizon this test set up' %
                          target)
        cache = os.environ.get('FASTBOOT_BROWSER_CACHE') or os.path.join(
            os.path.dirname(os.path.dirname(local)), 'fastboot-horizon-cache')
        with open(settings, 'w') as f:
            f.write(LOCAL_SETTINGS % {
                'secret': uuid.uuid4().hex,
                'keystone': self.layout.url('keystone', '/v3'),
                'workdir': self.workdir, 'cache': cache})
        self.addCleanup(os.unlink, settings)
        for source, target in copies:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(source, target)
            self.addCleanup(os.unlink, target)

    def login(self):
        password = self.stack.openrc('demo')['OS_PASSWORD']
        self.browser.get(self.horizon_url + '/auth/login/')
        self.wait(ec.presence_of_element_located((By.ID, 'id_username')))
        self.browser.find_element(By.ID, 'id_username').send_keys('demo')
        self.browser.find_element(By.ID, 'id_password').send_keys(password)
        self.screenshot('01-login')
        self.browser.find_element(By.ID, 'loginBtn').click()
        self.wait(ec.url_contains('/project/fastboot_batches/'),
                  timeout=180)

    def fill_form(self, snapshot, count):
        self.browser.get(self.horizon_url +
                         '/project/fastboot_batches/create/?snapshot_id=' +
                         snapshot)
        self.wait(ec.presence_of_element_located((By.ID, 'id_count')),
                  timeout=180)
        self.assertEqual(snapshot, self.browser.execute_script(
            'return document.getElementById("id_snapshot").value'))
        count_field = self.browser.find_element(By.ID, 'id_count')
        count_field.clear()
        count_field.send_keys(str(count))
        self.set_select('id_flavor', 'ms.tiny')
        self.set_select('id_network', 'none')
        name = self.browser.find_element(By.ID, 'id_name')
        name.clear()
        name.send_keys('farm')

    def test_boot_batch_watch_progress_and_timeline(self):
        guest, snap, _images = self.bootable_snapshot()
        self.login()
        self.fill_form(snap, 4)
        self.screenshot('02-boot-form')
        self.submit()
        self.wait(lambda b: '/project/fastboot_batches/' in b.current_url
                  and '/create/' not in b.current_url, timeout=180)
        batch_id = self.browser.current_url.rstrip('/').rsplit('/', 1)[-1]
        self.addCleanup(self.quiet, 'fastboot', 'batch', 'delete',
                        '--purge', batch_id)
        self.assertEqual(batch_id, self.batch('show', batch_id)['id'])
        self.screenshot('03-batch-detail-accepted')

        self.browser.get(self.horizon_url + '/project/fastboot_batches/')
        row = '#batches__row__%s' % batch_id
        self.wait(ec.presence_of_element_located((By.CSS_SELECTOR, row)))
        self.screenshot('04a-batches-building')
        self.browser.execute_script('window.fastbootMarker = 1;')
        self.wait(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, row + ' .fastboot-progress-text'),
            '4/4 ACTIVE'), timeout=ACTIVE_TIMEOUT)
        # Horizon's row update did it; the page was never reloaded.
        self.assertEqual(1, self.browser.execute_script(
            'return window.fastbootMarker;'))
        self.wait(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, row), 'Active'), timeout=120)
        created = self.browser.find_element(
            By.CSS_SELECTOR, row + ' td:last-of-type').text
        self.assertNotIn('T', created.split(',')[0], created)
        self.screenshot('04-batches-4-of-4-active')
        self.assert_consoles(guest, self.batch_servers(batch_id))

        self.browser.get(self.horizon_url + '/project/fastboot_batches/%s/'
                         '?tab=batch_details__timeline' % batch_id)
        chart = self.wait(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, 'svg.fastboot-timeline')), timeout=180)
        bars = chart.find_elements(By.CSS_SELECTOR, 'g.fastboot-bar')
        self.assertEqual(4, len(bars))
        for bar in bars:
            # Several phases per server: Nova's and fastboot's.
            self.assertGreater(len(bar.find_elements(By.TAG_NAME, 'rect')),
                               1)
        summary = self.browser.find_element(
            By.CSS_SELECTOR, '.fastboot-timeline-summary').text
        self.assertIn('4 of 4 servers ACTIVE', summary)
        self.assertIn('p50', summary)
        self.screenshot('05-batch-timeline')

        self.browser.get(self.horizon_url + '/project/fastboot_batches/%s/'
                         '?tab=batch_details__servers' % batch_id)
        table = self.wait(ec.visibility_of_element_located(
            (By.ID, 'servers')), timeout=180)
        self.assertEqual(4, table.text.count('ACTIVE'))
        self.screenshot('06-batch-servers')

    def test_count_over_quota_shows_error_next_to_field(self):
        # Any available snapshot of the project: nothing boots.
        tag = uuid.uuid4().hex[:8]
        volume = self.openstack('volume', 'create', '--size', '1',
                                'ms-dq-' + tag)['id']
        self.addCleanup(self.quiet, 'volume', 'delete', volume)
        self.wait_status('volume', volume)
        snap = self.openstack('volume', 'snapshot', 'create', '--volume',
                              volume, 'ms-dqsnap-' + tag)['id']
        self.addCleanup(self.quiet, 'volume', 'snapshot', 'delete', snap)
        self.wait_status('volume snapshot', snap)
        if 'ms.tiny' not in {f['Name'] for f in self.openstack(
                'flavor', 'list', user='admin')}:
            self.openstack('flavor', 'create', 'ms.tiny', '--ram', '256',
                           '--disk', '1', '--vcpus', '1', '--public',
                           user='admin')
        before = self.batch('list')
        self.login()
        self.fill_form(snap, 900)
        self.submit()
        error = self.wait(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, '.has-error')), timeout=180)
        self.assertIn('900 servers are more than the', error.text)
        self.assertIn('quota', error.text)
        self.assertIn('id_count', error.get_attribute('innerHTML'))
        self.screenshot('07-count-over-quota')
        self.assertEqual(before, self.batch('list'))
