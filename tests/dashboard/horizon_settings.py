"""Settings of the live Horizon the browser test drives (see
horizon_fakes for what is faked and why): the plugin's unit test
settings, served for real by ``django-admin runserver``.
"""

import os
import tempfile

from openstack_dashboard import theme_settings

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
# Compiling Horizon's SCSS theme takes tens of seconds on a busy 2-core
# machine: the compiled CSS (COMPRESS_ROOT) and compressor's record of it
# (the cache) are kept in FASTBOOT_BROWSER_CACHE between runs (tox: in
# the env's directory), so only the first run pays for it.
_CACHE_DIR = os.environ.get('FASTBOOT_BROWSER_CACHE') or os.path.join(
    SESSION_FILE_PATH, 'cache')
CACHES = {'default': {
    'BACKEND': 'django.core.cache.backends.filebased.FileBasedCache',
    'LOCATION': os.path.join(_CACHE_DIR, 'django-cache'),
    'TIMEOUT': None}}
LOGIN_REDIRECT_URL = '/project/fastboot_batches/'
# The real policy engine with the plugin's default rules.
POLICY_CHECK_FUNCTION = 'openstack_auth.policy.check'
STATIC_ROOT = os.path.join(_CACHE_DIR, 'static')
# As openstack_dashboard/settings.py: the SCSS theme compiled at the
# first page (Horizon's unit test settings leave it out), into STATIC_ROOT,
# which compressor's finder serves.
COMPRESS_ENABLED = True
COMPRESS_OFFLINE = False
COMPRESS_ROOT = STATIC_ROOT
COMPRESS_PRECOMPILERS = (
    ('text/scss', 'horizon.utils.scss_filter.ScssFilter'),
)
COMPRESS_FILTERS = {
    'css': ('compressor.filters.css_default.CssAbsoluteFilter',),
    'js': ('compressor.filters.jsmin.rJSMinFilter',),
}
COMPRESS_CSS_HASHING_METHOD = 'hash'
COMPRESS_PARSER = 'compressor.parser.HtmlParser'
# The themes' static files, which the SCSS imports (Horizon's own
# settings.py adds them; its test settings have only the xstatic dirs).
STATICFILES_DIRS = list(theme_settings.get_theme_static_dirs(
    AVAILABLE_THEMES, THEME_COLLECTION_DIR, ROOT_PATH)) + list(  # noqa: F405
    STATICFILES_DIRS)  # noqa: F405
HORIZON_CONFIG['ajax_poll_interval'] = 1000  # noqa: F405
SECRET_KEY = 'fastboot-browser-test-only'
# Loaded at the first request, once Django's apps are ready: installs
# the fakes, then serves Horizon's own URLs.
ROOT_URLCONF = 'tests.dashboard.horizon_urls'
