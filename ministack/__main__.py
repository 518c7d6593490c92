"""``python -m ministack up|down|status|env``."""

import argparse
import sys

from ministack import control
from ministack import orchestrate
from ministack import proc
from ministack import stack as stack_mod


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m ministack',
        description='A real OpenStack on 127.0.0.1 for fastboot tests.')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('up', help='start every service (idempotent)')
    down = sub.add_parser('down', help='stop every service started')
    down.add_argument('--keep', action='store_true',
                      help='keep the run directory (logs, databases)')
    sub.add_parser('status', help='each service: pid, RSS')
    env = sub.add_parser('env', help='print an openrc')
    env.add_argument('--user', choices=('demo', 'admin'), default='demo')
    demo = sub.add_parser(
        'demo', help='up, boot N guests from one volume snapshot through '
        'Nova, print the table, down')
    demo.add_argument('--vms', type=_positive, default=4,
                      help='how many servers (default 4)')
    demo.add_argument('--report', metavar='FILE',
                      help='write the JSON report (the standalone demo\'s '
                      'fields) to FILE')
    demo.add_argument('--stock', action='store_true',
                      help='then boot as many the stock way, a volume '
                      'per server (RBD clones, then full copies), and add '
                      'the figures to the table and report')
    demo.add_argument('--keep-up', action='store_true',
                      help='leave the ministack up afterwards')
    stop = sub.add_parser('stop', help='stop one service')
    stop.add_argument('service')
    stop.add_argument('--kill', action='store_true',
                      help='SIGKILL at once (a crash)')
    start = sub.add_parser('start', help='start one stopped service')
    start.add_argument('service', choices=control.startable())
    args = parser.parse_args(argv)
    stack = stack_mod.Stack()
    if args.command in ('stop', 'start'):
        return _one(stack, args)
    try:
        return getattr(orchestrate, args.command)(stack, args)
    except proc.ServiceFailed as e:
        print('ministack: %s' % e, file=sys.stderr)
        return 1


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError('not a positive count: %r' % text)
    return value


def _one(stack, args):
    try:
        if args.command == 'stop':
            was = control.stop(stack, args.service, kill=args.kill)
            print('ministack: %s %s' % (
                args.service, 'stopped' if was else 'was not running'))
        else:
            pid = control.start(stack, args.service)
            print('ministack: %s running (pid %s)' % (args.service, pid))
    except (ValueError, proc.ServiceFailed) as e:
        print('ministack: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
