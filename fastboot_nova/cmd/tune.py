"""``fastboot-tune``: the control-plane tuning profile for boot storms.

::

    fastboot-tune generate --servers N --computes H [...] [--format yaml]
    fastboot-tune check --servers N --computes H --config-file [KIND=]PATH
    fastboot-tune apply --servers N --computes H --config-file [KIND=]PATH

``--config-file`` repeats; KIND (nova, nova-cpu, cinder, placement,
mariadb, rabbitmq) is guessed from the file name when left out.

Exit status: 0 all good; 1 ``check`` found settings that will fail;
2 bad input (impossible constraints, a missing, unreadable or unparsable
file, bad arguments), one line ``fastboot-tune: error: ...`` on stderr.

The commands are thin: the work is :mod:`fastboot_nova.tuning`, which the
devstack plugin and the storm benchmark call directly. Plain argparse, not
oslo.config's CLI: oslo.config owns ``--config-file`` for its own files,
and here the config files are the data being checked.
"""

import argparse
import sys

from fastboot_nova import tuning
from fastboot_nova.tuning import checker
from fastboot_nova.tuning import configfile
from fastboot_nova.tuning import inputs as inputs_mod
from fastboot_nova.tuning import render

PROG = 'fastboot-tune'
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Usage(message)


class _Usage(Exception):
    pass


def _storm_args(parser):
    g = parser.add_argument_group('the storm')
    g.add_argument('--servers', '-n', type=int, required=True, metavar='N',
                   help='servers booted at once')
    g.add_argument('--computes', type=int, required=True, metavar='H',
                   help='nova-compute services they land on')
    g.add_argument('--conductors', type=int, default=2, metavar='C',
                   help='nova-conductor processes (default 2)')
    g.add_argument('--schedulers', type=int, default=2, metavar='S',
                   help='nova-scheduler processes (default 2)')
    g.add_argument('--api-workers', type=int, default=2, metavar='W',
                   help='nova-api processes (default 2)')
    g.add_argument('--cinder-api-workers', type=int, default=2,
                   help='cinder-api processes (default 2)')
    g.add_argument('--placement-workers', type=int, default=2,
                   help='placement API processes (default 2)')
    g.add_argument('--db-max-connections', type=int, metavar='M',
                   help="MariaDB's max_connections when fixed (a shared "
                        'server); default: sized by the profile')
    g.add_argument('--db-other-connections', type=int, default=50,
                   help='DB connections of everything else (default 50)')
    g.add_argument('--concurrency-backend', default='threading',
                   choices=inputs_mod.BACKENDS,
                   help="Nova's concurrency mode (default threading, "
                        "Nova 34's default)")
    g.add_argument('--flavor-vcpus', type=int, default=1)
    g.add_argument('--flavor-ram-mb', type=int, default=512)
    g.add_argument('--volume-gb', type=int, default=1,
                   help='volume size per server the stock way (quotas)')


def _files_arg(parser):
    parser.add_argument('--config-file', action='append', required=True,
                        dest='config_files', metavar='[KIND=]PATH',
                        help='a live config file (repeat); KIND one of %s'
                             % ', '.join(configfile.FILE_KINDS))


def build_parser():
    parser = _Parser(prog=PROG, description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True,
                                parser_class=_Parser)
    gen = sub.add_parser('generate', help='print the profile')
    _storm_args(gen)
    gen.add_argument('--format', choices=sorted(render.RENDERERS),
                     default='ini')
    chk = sub.add_parser('check', help='report live settings that will '
                                       'fail at this storm')
    _storm_args(chk)
    _files_arg(chk)
    chk.add_argument('--verbose', '-v', action='store_true',
                     help='also list the settings that pass')
    app = sub.add_parser('apply', help='write the profile into existing '
                                       'config files')
    _storm_args(app)
    _files_arg(app)
    app.add_argument('--dry-run', action='store_true',
                     help='say what would change, write nothing')
    app.add_argument('--no-backup', action='store_true',
                     help='do not keep a copy of each changed file')
    return parser


def inputs_from(args):
    return tuning.Inputs(
        servers=args.servers, computes=args.computes,
        conductors=args.conductors, schedulers=args.schedulers,
        api_workers=args.api_workers,
        cinder_api_workers=args.cinder_api_workers,
        placement_workers=args.placement_workers,
        db_max_connections=args.db_max_connections,
        db_other_connections=args.db_other_connections,
        concurrency_backend=args.concurrency_backend,
        flavor_vcpus=args.flavor_vcpus, flavor_ram_mb=args.flavor_ram_mb,
        volume_gb=args.volume_gb)


def _generate(args, profile, out):
    out.write(render.RENDERERS[args.format](profile))
    return EXIT_OK


def _check(args, profile, out):
    files = [tuning.ConfigFile.from_arg(a) for a in args.config_files]
    findings = checker.evaluate(profile, files)
    failed = [f for f in findings if f.failed]
    for f in findings:
        if f.failed or args.verbose:
            out.write(f.line() + '\n')
    out.write('%d of %d settings will fail at %d servers on %d computes\n'
              % (len(failed), len(findings), profile.inputs.servers,
                 profile.inputs.computes))
    return EXIT_FAIL if failed else EXIT_OK


def _apply(args, profile, out):
    files = [tuning.ConfigFile.from_arg(a) for a in args.config_files]
    changes = tuning.apply(profile, files, backup=not args.no_backup,
                           dry_run=args.dry_run)
    for change in changes:
        out.write(('would ' if args.dry_run else '') + change.line() + '\n')
    backups = sorted({c.backup for c in changes if c.backup})
    for backup in backups:
        out.write('backup %s\n' % backup)
    out.write('%d settings %s in %d files\n' % (
        len(changes), 'to change' if args.dry_run else 'changed',
        len({c.path for c in changes})))
    return EXIT_OK


COMMANDS = {'generate': _generate, 'check': _check, 'apply': _apply}


def main(argv=None, stdout=None, stderr=None):
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        profile = tuning.generate(inputs_from(args))
        return COMMANDS[args.command](args, profile, out)
    except _Usage as e:
        err.write(parser.format_usage())
        err.write('%s: error: %s\n' % (PROG, e))
    except tuning.TuningError as e:
        err.write('%s: error: %s\n' % (PROG, e))
    return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
