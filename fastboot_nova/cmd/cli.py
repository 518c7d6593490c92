"""The ``fastboot`` command line, a cliff application.

Commands come from the ``fastboot.cli`` entry point namespace. Every
command works on one engine, chosen by ``--state-path`` (or the
``FASTBOOT_STATE_PATH`` environment variable, or ``[fastboot] state_path``
of the configuration files, in that order).

Errors the user can act on (fastboot's own, OS errors, configuration
errors, Ctrl-C) end as one line ``fastboot: error: <message>`` on standard
error and exit code 1; bad arguments exit 2. ``--debug`` adds the
traceback.
"""

import contextlib
import logging
import os
import sys
import traceback

from cliff import app
from cliff import commandmanager
from cliff import help as cliff_help
from oslo_config import cfg

from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova import storage

NAME = 'fastboot'
NAMESPACE = 'fastboot.cli'
STATE_PATH_ENV = 'FASTBOOT_STATE_PATH'

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGPIPE = 141

#: Errors that are the user's or the machine's, not fastboot bugs.
EXPECTED_ERRORS = (exception.FastbootException, OSError, cfg.Error)


def _version():
    try:
        from pbr import version
        return version.VersionInfo('fastboot').version_string()
    except Exception:
        return 'unknown'


#: An error line longer than this is cut: whatever a user passed (a
#: 100,000 character argument) is not echoed whole.
MAX_ERROR_LENGTH = 1000


def _one_line(message):
    line = ' '.join(str(message).split()) or 'unknown error'
    if len(line) > MAX_ERROR_LENGTH:
        line = line[:MAX_ERROR_LENGTH] + '... (%d characters)' % len(line)
    return line


class FastbootApp(app.App):
    """The ``fastboot`` application."""

    NAME = NAME
    LOG = logging.getLogger(NAME)

    def __init__(self, stdin=None, stdout=None, stderr=None):
        self.conf = None
        self.engine = None
        self._log_handlers = []
        super().__init__(
            description='Boot many identical VMs fast from one shared, '
                        'cached origin image.',
            version=_version(),
            command_manager=commandmanager.CommandManager(NAMESPACE),
            stdin=stdin, stdout=stdout, stderr=stderr,
            deferred_help=True)

    def build_option_parser(self, description, version,
                            argparse_kwargs=None):
        parser = super().build_option_parser(description, version,
                                             argparse_kwargs)
        parser.prog = NAME
        parser.add_argument(
            '--state-path', metavar='PATH',
            default=os.environ.get(STATE_PATH_ENV) or None,
            help='State path of the engine to work on (env: %s; default: '
                 '[fastboot] state_path of the configuration, '
                 '/var/lib/fastboot).' % STATE_PATH_ENV)
        parser.add_argument(
            '--config-file', metavar='FILE', action='append', default=[],
            dest='config_files',
            help='oslo.config file to read; can be repeated (default: '
                 'fastboot.conf in ~/.fastboot, ~, /etc/fastboot or /etc, '
                 'if there is one).')
        return parser

    def configure_logging(self):
        """Log to stderr: warnings by default, more with -v or --debug."""
        root = logging.getLogger('')
        root.setLevel(logging.DEBUG)
        level = {0: logging.ERROR, 1: logging.WARNING,
                 2: logging.INFO}.get(self.options.verbose_level,
                                      logging.DEBUG)
        if self.options.debug:
            level = logging.DEBUG
        handlers = [logging.StreamHandler(self.stderr)]
        handlers[0].setLevel(level)
        handlers[0].setFormatter(
            logging.Formatter(self.CONSOLE_MESSAGE_FORMAT))
        if self.options.log_file:
            handlers.append(logging.FileHandler(self.options.log_file))
            handlers[-1].setFormatter(
                logging.Formatter(self.LOG_FILE_MESSAGE_FORMAT))
        for handler in handlers:
            root.addHandler(handler)
            self._log_handlers.append(handler)

    def remove_log_handlers(self):
        root = logging.getLogger('')
        for handler in self._log_handlers:
            root.removeHandler(handler)
            handler.close()
        self._log_handlers = []

    # -- what commands use ---------------------------------------------

    def get_conf(self):
        """The configuration, loaded on first use."""
        if self.conf is None:
            for path in self.options.config_files:
                if not os.path.isfile(path):
                    raise exception.FastbootException(
                        'configuration file %s does not exist' % path)
            conf = cfg.ConfigOpts()
            fastboot_conf.register_opts(conf)
            conf(args=[], project=NAME, prog=NAME,
                 default_config_files=self.options.config_files or None,
                 default_config_dirs=[] if self.options.config_files
                 else None)
            self.conf = conf
        return self.conf

    def get_agent(self):
        """This host's coordinator agent, or None without a coordinator."""
        from fastboot_nova.hierarchy import host
        return host.make_agent(self.get_conf(), self.get_engine())

    def get_engine(self):
        """The engine of ``--state-path``, created on first use."""
        if self.engine is None:
            self.engine = storage.get_engine(
                self.get_conf(), state_path=self.options.state_path)
        return self.engine

    # -- running -------------------------------------------------------

    def fail(self, message, code=EXIT_ERROR):
        if self.options.debug and sys.exc_info()[0] is not None:
            traceback.print_exc(file=self.stderr)
        self.stderr.write('%s: error: %s\n' % (NAME, _one_line(message)))
        self.stderr.flush()
        return code

    def _argparse_streams(self):
        """argparse writes usage errors to sys.stderr: send them to ours."""
        stack = contextlib.ExitStack()
        stack.enter_context(contextlib.redirect_stdout(self.stdout))
        stack.enter_context(contextlib.redirect_stderr(self.stderr))
        return stack

    def run(self, argv):
        try:
            with self._argparse_streams():
                self.options, remainder = self.parser.parse_known_args(argv)
        except SystemExit as e:
            # argparse printed the usage error, or --version.
            return EXIT_OK if e.code is None else e.code
        self.configure_logging()
        if self.options.deferred_help:
            if not remainder:
                try:
                    self.print_help_if_requested()
                except cliff_help.HelpExit:
                    pass
                return EXIT_OK
            # "fastboot list --help" is "fastboot help list".
            remainder.insert(0, 'help')
        if not remainder:
            self.parser.print_usage(self.stderr)
            return self.fail("a command is required (see 'fastboot "
                             "--help')", EXIT_USAGE)
        return self.run_subcommand(remainder)

    def run_subcommand(self, argv):
        try:
            cmd_factory, cmd_name, sub_argv = (
                self.command_manager.find_command(argv))
        except ValueError as e:
            return self.fail("%s (see 'fastboot --help')" % e, EXIT_USAGE)
        cmd = cmd_factory(self, self.options, cmd_name=cmd_name)
        try:
            parser = cmd.get_parser('%s %s' % (NAME, cmd_name))
            with self._argparse_streams():
                parsed_args = parser.parse_args(sub_argv)
        except SystemExit as e:
            # argparse printed the usage and error line (exit 2), or help.
            return EXIT_OK if e.code is None else e.code
        try:
            return cmd.run(parsed_args) or EXIT_OK
        except cliff_help.HelpExit:
            return EXIT_OK
        except BrokenPipeError:
            return EXIT_SIGPIPE
        except EXPECTED_ERRORS as e:
            return self.fail(e)
        except KeyboardInterrupt:
            return self.fail('interrupted')
        except Exception as e:
            # A bug: still one line, with what to do to see more.
            return self.fail('%s: %s (run with --debug for the traceback)'
                             % (type(e).__name__, e))


def main(argv=None, stdin=None, stdout=None, stderr=None):
    """Entry point of the ``fastboot`` console script."""
    if argv is None:
        argv = sys.argv[1:]
    fastboot = FastbootApp(stdin=stdin, stdout=stdout, stderr=stderr)
    try:
        return fastboot.run(argv)
    finally:
        fastboot.remove_log_handlers()


if __name__ == '__main__':
    sys.exit(main())
