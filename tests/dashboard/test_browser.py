"""The Boot Batches panel in a real browser.

Headless Debian chromium, driven by Selenium through Debian's
chromedriver, against a live Horizon (``django-admin runserver`` with
tests/dashboard/horizon_settings.py) whose batch API is a real
coordinator process with a real fastboot-runner (cloud and token check
faked by tests/functional/coordinator/fake_openstack.py; Horizon's
login and its Cinder/Nova reads see the same faked cloud, see
horizon_fakes). Screenshots of each page go to FASTBOOT_BROWSER_OUTPUT
(default ``.dashboard-screenshots/`` in the tree).
"""

import os
import socket

import fixtures
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.dashboard import browser
from tests.functional.coordinator import batch_processes

ROOT = batch_processes.ROOT
OUTPUT = browser.OUTPUT
PORTS = range(32000, 33000)


def free_port(exclude=()):
    """A free port of the range this test may use (32000-32999)."""
    for port in PORTS:
        if port in exclude:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise AssertionError('no free port in 32000-32999')


class BrowserTest(browser.BrowserMixin,
                  batch_processes.BatchProcessTestCase):

    def setUp(self):
        self.check_browser()
        taken = set()

        def port():
            found = free_port(taken)
            taken.add(found)
            return found

        self.useFixture(fixtures.MockPatch(
            'tests.functional.coordinator.test_processes.free_port',
            port))
        super().setUp()
        self.snapshot = self.store.add_snapshot(batch_processes.PROJECT)
        self.horizon_port = free_port(taken | {self.port})
        self.horizon_url = 'http://127.0.0.1:%d' % self.horizon_port
        self.start_horizon()
        self.browser = self.start_browser()
        os.makedirs(OUTPUT, exist_ok=True)

    def start_horizon(self):
        env = dict(self.env,
                   FASTBOOT_BROWSER_API_URL=self.url,
                   FASTBOOT_BROWSER_KEYSTONE_URL='http://127.0.0.1:9/v3',
                   FASTBOOT_BROWSER_PROJECT=batch_processes.PROJECT,
                   FASTBOOT_BROWSER_WORKDIR=self.workdir,
                   DJANGO_SETTINGS_MODULE='tests.dashboard.horizon_settings')
        self.run_horizon(env, ROOT)

    def login(self):
        self.browser.get(self.horizon_url + '/auth/login/')
        self.browser.find_element(By.ID, 'id_username').send_keys('demo')
        self.browser.find_element(By.ID, 'id_password').send_keys('secret')
        self.screenshot('01-login')
        self.browser.find_element(By.ID, 'loginBtn').click()
        self.wait(ec.url_contains('/project/fastboot_batches/'))

    def set_select(self, field_id, value):
        # Horizon's themable selects hide the <select> behind a menu.
        self.browser.execute_script(
            'var s = document.getElementById(arguments[0]);'
            's.value = arguments[1];'
            's.dispatchEvent(new Event("change", {bubbles: true}));',
            field_id, value)

    def fill_form(self, count):
        self.browser.get(self.horizon_url +
                         '/project/fastboot_batches/create/?snapshot_id=' +
                         self.snapshot)
        self.wait(ec.presence_of_element_located((By.ID, 'id_count')))
        self.assertEqual(self.snapshot, self.browser.execute_script(
            'return document.getElementById("id_snapshot").value'))
        count_field = self.browser.find_element(By.ID, 'id_count')
        count_field.clear()
        count_field.send_keys(str(count))
        self.set_select('id_flavor', 'm1.small')
        self.set_select('id_network', 'none')
        name = self.browser.find_element(By.ID, 'id_name')
        name.clear()
        name.send_keys('farm')

    def test_boot_batch_watch_progress_and_timeline(self):
        # Each server stays BUILD for 60 of the runner's looks (0.2 s
        # apart): long enough to see the table refresh itself.
        self.store.set(server_ticks=60)
        self.process('runner').start()
        self.login()
        self.fill_form(4)
        self.screenshot('02-boot-form')
        self.submit()
        # The 202 goes straight to the batch's page.
        self.wait(lambda b: '/project/fastboot_batches/' in b.current_url
                  and '/create/' not in b.current_url)
        batch_id = self.browser.current_url.rstrip('/').rsplit('/', 1)[-1]
        self.assertEqual(
            1, len(self.http('GET', '/v1/batches').json()['batches']))
        self.screenshot('03-batch-detail-accepted')

        self.browser.get(self.horizon_url + '/project/fastboot_batches/')
        row = '#batches__row__%s' % batch_id
        # Read in one script: the row update replaces the row's elements.
        first = self.browser.execute_script(
            'return document.querySelector(arguments[0]).textContent;',
            row + ' .fastboot-progress-text').strip()
        self.assertNotEqual('4/4 ACTIVE', first)
        self.screenshot('04a-batches-building')
        # Horizon's row update polls the building row; a marker on the
        # window shows the page itself was never reloaded.
        self.browser.execute_script('window.fastbootMarker = 1;')
        self.wait(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, row + ' .fastboot-progress-text'),
            '4/4 ACTIVE'), timeout=180)
        self.assertEqual(1, self.browser.execute_script(
            'return window.fastbootMarker;'))
        self.wait(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, row), 'Active'))
        self.screenshot('04-batches-4-of-4-active')

        self.browser.get(self.horizon_url + '/project/fastboot_batches/%s/'
                         '?tab=batch_details__timeline' % batch_id)
        chart = self.wait(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, 'svg.fastboot-timeline')))
        bars = chart.find_elements(By.CSS_SELECTOR, 'g.fastboot-bar')
        self.assertEqual(4, len(bars))
        for bar in bars:
            self.assertTrue(bar.find_elements(By.TAG_NAME, 'rect'))
        summary = self.browser.find_element(
            By.CSS_SELECTOR, '.fastboot-timeline-summary').text
        self.assertIn('4 of 4 servers ACTIVE', summary)
        self.assertIn('p50', summary)
        self.screenshot('05-batch-timeline')

        self.browser.get(self.horizon_url + '/project/fastboot_batches/%s/'
                         '?tab=batch_details__servers' % batch_id)
        table = self.wait(ec.visibility_of_element_located(
            (By.ID, 'servers')))
        self.assertEqual(4, table.text.count('ACTIVE'))
        self.screenshot('06-batch-servers')

    def test_count_over_quota_shows_error_next_to_field(self):
        self.store.set(quota={batch_processes.PROJECT: 3})
        self.login()
        self.fill_form(5)
        self.submit()
        error = self.wait(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, '.has-error')))
        self.assertIn('5 servers are more than the 3 the project quota '
                      'allows.', error.text)
        self.assertIn('id_count', error.get_attribute('innerHTML'))
        self.screenshot('07-count-over-quota')
        self.assertEqual([], self.http('GET', '/v1/batches').json()[
            'batches'])
