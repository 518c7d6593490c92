"""A live Horizon server process and a headless chromium to drive it.

Shared by the browser test against a faked cloud (tests/dashboard) and
the one against a real OpenStack (tests/ministack/test_dashboard.py).
"""

import logging
import os
import subprocess
import sys
import time

import fixtures
import requests
from selenium import webdriver
from selenium.webdriver.chrome import service as chrome_service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import ui
from testtools import content

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
OUTPUT = os.environ.get('FASTBOOT_BROWSER_OUTPUT',
                        os.path.join(ROOT, '.dashboard-screenshots'))
CHROMIUM = os.environ.get('FASTBOOT_BROWSER_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('FASTBOOT_BROWSER_CHROMEDRIVER',
                              '/usr/bin/chromedriver')
WAIT = 60
START_TIMEOUT = 300


class BrowserMixin:
    """For a testtools TestCase with ``self.workdir``.

    ``self.output`` (default OUTPUT) is where screenshots go.
    """

    output = OUTPUT

    def check_browser(self):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.path.exists(path):
                # Not a hidden skip: these tests are meant to run after
                # `bash tools/install-deps.sh test`.
                self.fail('%s is missing: install the test packages of '
                          'bindep.txt (bash tools/install-deps.sh test)'
                          % path)
        # Selenium logs every WebDriver call (screenshots in base64) at
        # DEBUG: keep the test's captured log readable.
        for name in ('selenium', 'urllib3'):
            self.useFixture(fixtures.FakeLogger(name=name,
                                                level=logging.INFO))

    def run_horizon(self, env, cwd):
        """``django-admin runserver`` on ``self.horizon_port``."""
        log_file = os.path.join(self.workdir, 'horizon.log')
        with open(log_file, 'ab') as log:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'django', 'runserver', '--noreload',
                 '--insecure', '127.0.0.1:%d' % self.horizon_port],
                cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)

        def stop():
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)
        self.addOnException(lambda exc_info: self.addDetail(
            'horizon log', content.text_content(
                open(log_file, errors='replace').read()[-6000:])))
        # The first page of a fresh cache compiles the SCSS theme.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail('Horizon exited: %s' % open(log_file).read())
            try:
                if requests.get(self.horizon_url + '/auth/login/',
                                timeout=START_TIMEOUT).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.fail('Horizon did not start')

    def start_browser(self):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ('--headless=new', '--no-sandbox', '--disable-gpu',
                    '--disable-dev-shm-usage', '--window-size=1400,1000',
                    '--user-data-dir=%s' % os.path.join(self.workdir,
                                                        'chromium')):
            options.add_argument(arg)
        service = chrome_service.Service(
            CHROMEDRIVER, log_output=os.path.join(self.workdir,
                                                  'chromedriver.log'))
        browser = webdriver.Chrome(options=options, service=service)
        browser.set_page_load_timeout(120)
        self.addCleanup(browser.quit)
        self.addOnException(self._screenshot_on_failure)
        return browser

    def _screenshot_on_failure(self, exc_info):
        try:
            self.screenshot('FAILED-%s' % self.id().rsplit('.', 1)[-1])
        except Exception:  # the browser may be what failed
            pass

    def screenshot(self, name):
        os.makedirs(self.output, exist_ok=True)
        path = os.path.join(self.output, '%s.png' % name)
        self.browser.save_screenshot(path)
        return path

    def wait(self, condition, timeout=WAIT):
        return ui.WebDriverWait(self.browser, timeout).until(condition)

    def set_select(self, field_id, value):
        # Horizon's themable selects hide the <select> behind a menu.
        self.browser.execute_script(
            'var s = document.getElementById(arguments[0]);'
            's.value = arguments[1];'
            's.dispatchEvent(new Event("change", {bubbles: true}));',
            field_id, value)

    def submit(self):
        form = self.browser.find_element(By.ID, 'fastboot_boot_form')
        form.find_element(By.CSS_SELECTOR,
                          '[type="submit"]').click()
