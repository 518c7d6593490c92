"""The command runner every component takes as ``execute=``.

Commands are argv lists, never shell strings. Tests inject a fake that
records the commands (see ``tests/unit/fakes.py``).
"""

import logging
import subprocess

from fastboot_nova import exception

LOG = logging.getLogger(__name__)


def execute(*cmd, check_exit_code=True, timeout=None):
    """Run ``cmd`` and return ``(stdout, stderr)`` as text.

    :raises CommandFailed: on a non-zero exit when ``check_exit_code``.
    """
    cmd = [str(c) for c in cmd]
    LOG.debug('Running %s', cmd)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        raise exception.CommandFailed(cmd=cmd[0], code=127,
                                      stderr='executable not found')
    except subprocess.TimeoutExpired:
        raise exception.CommandFailed(cmd=cmd[0], code='timeout',
                                      stderr='no answer in %ss' % timeout)
    if check_exit_code and proc.returncode != 0:
        raise exception.CommandFailed(cmd=' '.join(cmd[:2]),
                                      code=proc.returncode,
                                      stderr=proc.stderr.strip())
    return proc.stdout, proc.stderr
