"""The WSGI application named by MINISTACK_WSGI_APP, loaded argv-free.

The OpenStack WSGI entry points parse ``sys.argv`` with oslo.config, and
under gunicorn that is gunicorn's own command line ("unrecognized
arguments: --bind ..."). gunicorn serves ``ministack.wsgiapp:application``
instead, which empties argv and imports the real application
(``module:attribute``); the configuration comes from each service's
OS_*_CONFIG_* variables, or (Cinder, which reads only its command line)
MINISTACK_WSGI_ARGV, a JSON list of arguments.
"""

import importlib
import json
import os
import sys

sys.argv = sys.argv[:1] + json.loads(os.environ.get('MINISTACK_WSGI_ARGV',
                                                    '[]'))
_module, _attr = os.environ['MINISTACK_WSGI_APP'].split(':')
application = getattr(importlib.import_module(_module), _attr)
