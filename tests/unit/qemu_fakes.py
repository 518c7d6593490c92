"""Fakes of qemu-storage-daemon and qemu-img for engine unit tests.

FakeQMP keeps a small model of the daemon (nodes, exports, jobs) so query
commands answer what earlier commands did; every command is recorded as
``(name, arguments)`` so tests assert the exact QMP sequence.
"""

import json
import os

from fastboot_nova import exception


class FakeDaemonModel:

    def __init__(self):
        self.running = False
        self.nodes = {}
        self.exports = {}
        self.jobs = {}
        self.calls = []
        self.fail = {}  # command -> error text, raised once
        self.sizes = {}  # node-name -> virtual size of origin nodes
        self.nbd = None
        self.objects = {}  # QOM object id -> object-add arguments


class FakeQMP:

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def close(self):
        pass

    def execute(self, command, **args):
        m = self.model
        m.calls.append((command, args))
        if command in m.fail:
            raise exception.QMPError(command=command,
                                     reason=m.fail.pop(command))
        handler = getattr(self, '_' + command.replace('-', '_'), None)
        return handler(**args) if handler else {}

    def _blockdev_add(self, **args):
        self.model.nodes[args['node-name']] = args
        return {}

    def _blockdev_del(self, **args):
        if args['node-name'] not in self.model.nodes:
            raise exception.QMPError(command='blockdev-del',
                                     reason='Failed to find node')
        del self.model.nodes[args['node-name']]
        return {}

    def _blockdev_reopen(self, options):
        for opts in options:
            self.model.nodes[opts['node-name']].update(opts)
        return {}

    def _block_export_add(self, **args):
        self.model.exports[args['id']] = args
        return {}

    def _block_export_del(self, **args):
        del self.model.exports[args['id']]
        return {}

    def _query_block_exports(self):
        return [{'id': k, 'node-name': v['node-name'], 'type': 'nbd',
                 'shutting-down': False}
                for k, v in self.model.exports.items()]

    def _query_named_block_nodes(self, flat=True):
        return [{'node-name': n,
                 'image': {'virtual-size': self.model.sizes.get(n, 0)}}
                for n in self.model.nodes]

    def _nbd_server_start(self, addr, **args):
        self.model.nbd = dict(args, addr=addr)
        if addr['type'] == 'unix':
            # Stands for the socket: the engine looks for it.
            open(addr['data']['path'], 'w').close()
        return {}

    def _object_add(self, **args):
        self.model.objects[args['id']] = args
        return {}

    def _qom_list(self, path):
        return [{'name': 'type', 'type': 'string'}] + [
            {'name': k, 'type': 'child<%s>' % v['qom-type']}
            for k, v in self.model.objects.items()]

    def _block_stream(self, **args):
        self.model.jobs[args['job-id']] = {
            'id': args['job-id'], 'status': 'concluded',
            'current-progress': 100, 'total-progress': 100}
        return {}

    def _query_jobs(self):
        return list(self.model.jobs.values())

    def _job_dismiss(self, id):
        del self.model.jobs[id]
        return {}


class FakeDaemon:

    def __init__(self, model):
        self.model = model
        self.starts = 0

    def is_running(self):
        return self.model.running

    def start(self):
        self.starts += 1
        self.model.running = True
        self.model.nodes.clear()
        self.model.exports.clear()
        self.model.objects.clear()

    def stop(self):
        self.model.running = False

    def pid(self):
        return 4242 if self.model.running else None

    def qmp(self, timeout=None):
        if not self.model.running:
            raise exception.QMPError(command='connect', reason='refused')
        return FakeQMP(self.model)


class FakeExecutor:
    """Records argv lists; fakes the effects of qemu-img on files."""

    def __init__(self):
        self.commands = []
        self.in_use = set()
        self.info = {}

    def __call__(self, *cmd, check_exit_code=True, timeout=None):
        cmd = [str(c) for c in cmd]
        self.commands.append(cmd)
        if cmd[:2] == ['qemu-img', 'create']:
            with open(cmd[-2], 'w') as f:
                f.write('qcow2')
        elif cmd[:2] == ['qemu-img', 'info']:
            path = cmd[-1]
            if '-U' not in cmd and path in self.in_use:
                raise exception.CommandFailed(
                    cmd='qemu-img info', code=1,
                    stderr='Failed to get shared "write" lock')
            return json.dumps(self.info.get(path, {'format': 'raw'})), ''
        return '', ''

    def img_commands(self, verb):
        return [c for c in self.commands if c[:2] == ['qemu-img', verb]]


def write_origin(directory, size=1 << 20):
    path = os.path.join(directory, 'origin.raw')
    with open(path, 'wb') as f:
        f.truncate(size)
    return path
