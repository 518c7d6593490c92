"""Settings of the live Horizon the browser test drives (see
horizon_fakes for what is faked and why): the plugin's unit test
settings, served for real by ``django-admin runserver``."""

import os
import tempfile

from fastboot_dashboard.test.settings import *  # noqa: F401,F403,H303

DEBUG = False
# Server errors go to the server's log (the test attaches it on failure).
LOGGING['handlers']['console'] = {  # noqa: F405
    'level': 'INFO', 'class': 'logging.StreamHandler'}
for _name in ('django.request', 'fastboot_dashboard', 'horizon',
              'openstack_dashboard', 'openstack_auth'):
    LOGGING['loggers'][_name] = {  # noqa: F405
        'handlers': ['console'], 'level': 'INFO', 'propagate': False}
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
AUTHENTICATION_BACKENDS = ('tests.dashboard.horizon_fakes.'
                           'FakeKeystoneBackend',)
OPENSTACK_KEYSTONE_URL = os.environ['FASTBOOT_BROWSER_KEYSTONE_URL']
AVAILABLE_REGIONS = []
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = 'Default'
WEBSSO_ENABLED = False
SESSION_ENGINE = 'django.contrib.sessions.backends.file'
SESSION_FILE_PATH = os.environ.get('FASTBOOT_BROWSER_WORKDIR',
                                   tempfile.gettempdir())
CACHES = {'default': {
    'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}
LOGIN_REDIRECT_URL = '/project/fastboot_batches/'
# The real policy engine with the plugin's default rules.
POLICY_CHECK_FUNCTION = 'openstack_auth.policy.check'
STATIC_ROOT = os.path.join(SESSION_FILE_PATH, 'static')
COMPRESS_ENABLED = True
COMPRESS_OFFLINE = False
COMPRESS_ROOT = STATIC_ROOT
HORIZON_CONFIG['ajax_poll_interval'] = 1000  # noqa: F405
SECRET_KEY = 'fastboot-browser-test-only'
# Loaded at the first request, once Django's apps are ready: installs
# the fakes, then serves Horizon's own URLs.
ROOT_URLCONF = 'tests.dashboard.horizon_urls'
