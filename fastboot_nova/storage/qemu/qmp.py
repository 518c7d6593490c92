"""A small synchronous QMP client.

The daemon's monitor serves one client at a time, so every use is a short
session: ``with QMPClient(path) as qmp: qmp.execute(...)``. Long jobs
(prefetch) are started in one session and polled in later ones.
"""

import json
import logging
import socket

from fastboot_nova import exception

LOG = logging.getLogger(__name__)


class QMPClient:
    """Talks QMP over a unix socket."""

    def __init__(self, path, timeout=30.0):
        self.path = path
        self.timeout = timeout
        self._sock = None
        self._file = None
        self.events = []

    def __enter__(self):
        if self._sock is None:
            self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            self._sock = sock
            self._file = sock.makefile('rw', encoding='utf-8')
            greeting = self._read()
            if 'QMP' not in greeting:
                raise exception.QMPError(command='connect',
                                         reason='no QMP greeting')
            self.execute('qmp_capabilities')
        except (OSError, ValueError) as e:
            sock.close()
            self._sock = None
            raise exception.QMPError(command='connect',
                                     reason='%s: %s' % (self.path, e))

    def close(self):
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def _read(self):
        line = self._file.readline()
        if not line:
            raise exception.QMPError(command='read',
                                     reason='the daemon closed the monitor')
        return json.loads(line)

    def execute(self, command, **arguments):
        """Run ``command``; return its ``return`` value or raise QMPError."""
        msg = {'execute': command}
        if arguments:
            msg['arguments'] = arguments
        LOG.debug('QMP %s %s', command, arguments)
        try:
            self._file.write(json.dumps(msg) + '\n')
            self._file.flush()
            while True:
                reply = self._read()
                if 'event' in reply:
                    self.events.append(reply)
                    continue
                break
        except (OSError, ValueError) as e:
            raise exception.QMPError(command=command, reason=str(e))
        if 'error' in reply:
            raise exception.QMPError(command=command,
                                     reason=reply['error'].get('desc'))
        return reply.get('return')
