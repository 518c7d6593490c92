"""``fastboot demo``: boot real tiny guests over one cached origin."""

import os

from cliff import lister

from fastboot_nova.cmd.commands import common
from fastboot_nova import exception

DEFAULT_VMS = 8
MAX_VMS = 64
COLUMNS = ('name', 'boot_seconds', 'ok', 'checksum_ok')


class Demo(lister.Lister):
    """Build a tiny guest, boot VMs from one shared cached origin, report.

    Stands up an origin and emulated hosts on this machine, boots VMS real
    guests under QEMU, each on its own copy-on-write snapshot, checks what
    each guest read, and reports boot times and how few bytes were read
    from the origin. Needs root and QEMU (tools/run-demo.sh installs it).
    Exits 1 if any VM failed.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--vms', metavar='N', type=common.positive_int(1, MAX_VMS),
            default=DEFAULT_VMS,
            help='Number of VMs to boot, 1 to %d (default: %d).' % (
                MAX_VMS, DEFAULT_VMS))
        parser.add_argument(
            '--report', metavar='FILE',
            help='Also write the full report as JSON to FILE.')
        parser.add_argument(
            '--state-path', metavar='PATH', dest='demo_state_path',
            help='Directory for the demo engines (default: the global '
                 '--state-path, FASTBOOT_STATE_PATH, or a temporary '
                 'directory chosen by the demo).')
        parser.add_argument(
            '--cache-dir', metavar='DIR',
            default=os.path.join('~', '.cache', 'fastboot'),
            help='Where the built guest (kernel, initramfs, image) is '
                 'kept between runs (default: ~/.cache/fastboot).')
        parser.add_argument(
            '--hosts', metavar='H', type=common.positive_int(1, 15),
            help='Emulate H hosts in network namespaces (needs root), with '
                 'an origin and a coordinator; hosts read from each other '
                 'in the coordinator\'s tree. Without it, one host.')
        parser.add_argument(
            '--vms-per-host', metavar='V', type=common.positive_int(1, 8),
            default=2, help='VMs per host with --hosts (default: 2).')
        parser.add_argument(
            '--fanout', metavar='K', type=common.positive_int(1, 16),
            default=3,
            help='Children per parent in the tree (default: 3).')
        parser.add_argument(
            '--rate', metavar='RATE',
            help='Limit every host link, e.g. 100mbit (tc tbf units).')
        parser.add_argument(
            '--kill-parent-at', metavar='SECONDS', type=float,
            help='With --hosts: kill the cache daemon of the inner host '
                 'with the most children SECONDS after the boots start.')
        parser.add_argument(
            '--keep', action='store_true',
            help='Leave the engines, disks and processes in place for '
                 'inspection instead of cleaning up.')
        return parser

    def _progress(self, message):
        self.app.stderr.write('%s\n' % message)
        self.app.stderr.flush()

    def take_action(self, parsed_args):
        # Imported here: the demo pulls in the guest builder and VM runner,
        # which no other command needs.
        from fastboot_nova.demo import runner

        if parsed_args.hosts:
            return self._multihost(parsed_args)
        if parsed_args.kill_parent_at is not None:
            raise exception.FastbootException(
                '--kill-parent-at needs --hosts')
        state_path = parsed_args.demo_state_path or self.app.options.state_path
        report = runner.run_demo(
            self.app.get_conf(),
            vms=parsed_args.vms,
            state_path=state_path,
            report=parsed_args.report,
            cache_dir=os.path.expanduser(parsed_args.cache_dir),
            keep=parsed_args.keep,
            progress=self._progress)
        self.report = report
        vms = report.get('vms', [])
        return COLUMNS, [tuple(vm.get(c) for c in COLUMNS) for vm in vms]

    def _multihost(self, parsed_args):
        from fastboot_nova.demo import multihost

        if parsed_args.kill_parent_at is not None and \
                parsed_args.kill_parent_at < 0:
            raise exception.FastbootException(
                '--kill-parent-at must be >= 0 seconds')
        report = multihost.run_multihost_demo(
            self.app.get_conf(), hosts=parsed_args.hosts,
            vms_per_host=parsed_args.vms_per_host,
            report=parsed_args.report,
            cache_dir=os.path.expanduser(parsed_args.cache_dir),
            keep=parsed_args.keep, progress=self._progress,
            kill_parent_at=parsed_args.kill_parent_at,
            fanout=parsed_args.fanout, rate=parsed_args.rate)
        self.report = report
        columns = ('name', 'host') + COLUMNS[1:]
        return columns, [tuple(vm.get(c) for c in columns)
                         for vm in report['vms']]

    def run(self, parsed_args):
        self.report = {}
        result = super().run(parsed_args)
        self.app.stdout.write(summary(self.report) + '\n')
        return result or (0 if succeeded(self.report) else 1)


def succeeded(report):
    """True if the demo ran at least one VM and every VM booted right."""
    vms = report.get('vms', [])
    if report.get('ok') is False or not vms:
        return False
    # VMs of a host whose cache daemon the demo killed on purpose do not
    # count; every other one must boot right.
    return all(vm.get('ok') and vm.get('checksum_ok', True) for vm in vms
               if not vm.get('on_killed_host'))


def summary(report):
    """One line: bytes read from the origin against the image size."""
    lines = []
    if report.get('hosts'):
        hosts = ', '.join('%s<-%s %d B' % (h['name'],
                                            h['parent'] or 'origin',
                                            h['ingress_bytes'])
                          for h in report['hosts'])
        lines.append('hosts (fan-out %s): %s' % (report.get('fanout'),
                                                 hosts))
        lines.append('origin egress: %d B' % report['origin_egress_bytes'])
        if report.get('export_auth'):
            lines.append('host-to-host exports: %s' % (
                'NBD TLS-PSK' if report['export_auth'] == 'psk' else
                'unauthenticated'))
        for e in report.get('reparent_events', []):
            lines.append('re-parent: %s %s -> %s (%s)' % (
                e['host'], e['old_parent'] or 'origin',
                e['new_parent'] or 'origin', e['reason']))
    read = report.get('origin_bytes_read')
    size = report.get('image_bytes')
    if read is None or not size:
        lines.append('origin bytes read: %s' % ('unknown' if read is None
                                                else read))
    else:
        lines.append('origin bytes read: %d of %d image bytes (%.1f%%)' % (
            read, size, 100.0 * read / size))
    return '\n'.join(lines)
