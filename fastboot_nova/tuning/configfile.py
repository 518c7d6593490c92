"""Live config files: which service a file configures, reading, editing.

Three formats, each read strictly (a file that does not parse is never
judged nor rewritten) and edited line by line, so comments, blank lines,
order and unrelated options survive an ``apply`` byte for byte:

``ini``
    nova.conf, nova-cpu.conf, cinder.conf, placement.conf: validated with
    oslo.config's own parser (what the services use), then edited like
    devstack's ``iniset``: the last occurrence of an option is the value
    oslo.config uses and the one replaced.
``mycnf``
    my.cnf and its conf.d files: option groups, ``key``/``key = value``,
    ``!include``; ``-`` and ``_`` are the same in a name. mariadbd reads
    [mysqld], [server], [mariadb], [mariadbd] in that order, the last
    value wins.
``sysctl``
    rabbitmq.conf (the new-style format): ``key = value`` lines only.
"""

import dataclasses
import os
import re

from oslo_config import iniparser

from fastboot_nova.tuning import exception
from fastboot_nova.tuning import setting

FORMATS = {'nova': 'ini', 'nova-cpu': 'ini', 'cinder': 'ini',
           'placement': 'ini', 'mariadb': 'mycnf', 'rabbitmq': 'sysctl'}
FILE_KINDS = tuple(k for k in setting.KINDS if k in FORMATS)
#: The groups mariadbd reads, in the order it reads them.
MARIADB_GROUPS = ('mysqld', 'server', 'mariadb', 'mariadbd')

_MYCNF_KEY = re.compile(r'^[A-Za-z0-9_.-]+\Z')
_SYSCTL_KEY = re.compile(r'^[A-Za-z0-9_.$-]+\Z')
_MYCNF_COMMENT = re.compile(r'\s#')


def guess_kind(path):
    """The kind of a file from its name, or None."""
    name = os.path.basename(path).lower()
    if name.startswith(('nova-cpu', 'nova-compute', 'nova_cpu')):
        return 'nova-cpu'
    for kind in ('nova', 'cinder', 'placement'):
        if name.startswith(kind):
            return kind
    if name.startswith('rabbitmq') and name.endswith('.conf'):
        return 'rabbitmq'
    if name.endswith('.cnf'):
        return 'mariadb'
    return None


@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """A live file and the kind of service configuration it holds."""

    kind: str
    path: str

    @classmethod
    def from_arg(cls, arg):
        """``[KIND=]PATH``; without KIND the file name tells."""
        kind, sep, path = arg.partition('=')
        if not sep or kind not in FILE_KINDS:
            kind, path = guess_kind(arg), arg
            if kind is None:
                raise exception.ConfigFileError(
                    path=arg,
                    reason='cannot tell which service it configures; '
                           'write KIND=%s with KIND one of %s'
                           % (arg, ', '.join(FILE_KINDS)))
        if not path:
            raise exception.ConfigFileError(path=arg, reason='empty path')
        return cls(kind, path)

    @property
    def format(self):
        return FORMATS[self.kind]

    def read(self):
        """The parsed :class:`Document`; ConfigFileError says why not."""
        try:
            with open(self.path, 'rb') as f:
                raw = f.read()
        except FileNotFoundError:
            raise exception.ConfigFileError(path=self.path,
                                            reason='no such file')
        except IsADirectoryError:
            raise exception.ConfigFileError(path=self.path,
                                            reason='is a directory')
        except OSError as e:
            raise exception.ConfigFileError(
                path=self.path, reason='cannot be read: %s' % e.strerror)
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError:
            raise exception.ConfigFileError(path=self.path,
                                            reason='is not UTF-8 text')
        return parse(self.format, text, self.path)


def parse(fmt, text, path='<text>'):
    """Parse ``text`` strictly; raises ConfigFileError if it does not."""
    doc = _DOCUMENTS[fmt](text.splitlines(keepends=True))
    try:
        doc.validate()
    except _Unparsable as e:
        raise exception.ConfigFileError(
            path=path, reason='cannot be parsed, line %d: %s (%r)'
            % (e.lineno, e.msg, e.line.rstrip('\n')))
    return doc


class _Unparsable(Exception):
    def __init__(self, msg, lineno, line):
        super().__init__(msg)
        self.msg, self.lineno, self.line = msg, lineno, line


class _OsloStrict(iniparser.BaseParser):
    """oslo.config's INI grammar, plus: no option outside a section."""

    def __init__(self):
        self.section = None

    def new_section(self, section):
        self.section = section

    def assignment(self, key, value):
        if self.section is None:
            raise _Unparsable('option outside any section', self.lineno,
                              key)

    def parse_exc(self, msg, lineno, line=None):
        return _Unparsable(msg, lineno, line or '')


@dataclasses.dataclass
class _Option:
    section: str | None
    key: str
    value: str
    start: int
    end: int


class _Document:
    """Lines of a file, its options with their line spans, and edits."""

    def __init__(self, lines):
        self.lines = list(lines)

    def text(self):
        return ''.join(self.lines)

    # Subclasses: validate(), options(), name(key), lookup groups.
    def get(self, section, name):
        """The value the service uses, or None when unset."""
        found = self._find(section, name)
        return found.value if found else None

    def _find(self, section, name):
        hits = [o for o in self.options()
                if self.name(o.key) == self.name(name) and
                o.section in self._groups(section)]
        if not hits:
            return None
        order = self._groups(section)
        return max(hits, key=lambda o: (order.index(o.section), o.start))

    def set(self, section, name, value, comment=None):
        """Set ``name``, where the service reads it; return the old value."""
        found = self._find(section, name)
        if found is not None:
            self.lines[found.start:found.end] = [
                '%s = %s\n' % (found.key, value)]
            return found.value
        new = ['# %s\n' % comment] if comment else []
        new.append('%s = %s\n' % (name, value))
        self._insert(section, new)
        return None

    def _insert(self, section, new):
        heads = [i for i, line in enumerate(self.lines)
                 if self._section_of_header(line) == section]
        if not heads:
            if self.lines and not self.lines[-1].endswith('\n'):
                self.lines[-1] += '\n'
            if self.lines and self.lines[-1].strip():
                self.lines.append('\n')
            self.lines += ['[%s]\n' % section] + new
            return
        at = self._section_end(heads[-1])
        self.lines[at:at] = new

    def _section_end(self, head):
        """Index after the last non-blank line of the section at head."""
        end = head + 1
        last = head + 1
        while end < len(self.lines):
            if self._section_of_header(self.lines[end]) is not None:
                break
            if self.lines[end].strip():
                last = end + 1
            end += 1
        if last > 0 and not self.lines[last - 1].endswith('\n'):
            self.lines[last - 1] += '\n'
        return last

    @staticmethod
    def _section_of_header(line):
        stripped = line.strip()
        if stripped.startswith('[') and stripped.endswith(']'):
            return stripped[1:-1].strip()
        return None

    @staticmethod
    def name(key):
        return key

    @staticmethod
    def _groups(section):
        return (section,)


class IniDocument(_Document):
    def validate(self):
        _OsloStrict().parse(self.lines)

    def options(self):
        out, section, current = [], None, None
        for i, line in enumerate(self.lines):
            body = line.rstrip()
            if current is not None and body.startswith((' ', '\t')) and \
                    body.strip():
                current.end = i + 1
                continue
            current = None
            if not body.strip() or body.startswith(('#', ';')):
                continue
            if body.startswith('['):
                section = body[1:-1]
                continue
            key, _sep, value = _split(body)
            current = _Option(section, key, _unquote(value), i, i + 1)
            out.append(current)
        return out


class MyCnfDocument(_Document):
    def validate(self):
        self.options()

    def options(self):
        out, section = [], None
        for i, line in enumerate(self.lines):
            body = line.strip()
            if not body or body.startswith(('#', ';')):
                continue
            if body.startswith('!include'):
                continue
            if body.startswith('['):
                if not body.endswith(']') or len(body) < 3:
                    raise _Unparsable('bad group header', i + 1, line)
                section = body[1:-1].strip()
                continue
            key, sep, value = body.partition('=')
            key = key.strip()
            if not _MYCNF_KEY.match(key):
                raise _Unparsable('bad option name', i + 1, line)
            if section is None:
                raise _Unparsable('option before any [group]', i + 1, line)
            # A '#' after blank space starts a comment in an option file.
            value = _MYCNF_COMMENT.split(value, maxsplit=1)[0].strip()
            out.append(_Option(section, key, _unquote(value) if sep else '',
                               i, i + 1))
        return out

    @staticmethod
    def name(key):
        return key.replace('-', '_').lower()

    @staticmethod
    def _groups(section):
        if section in MARIADB_GROUPS:
            return MARIADB_GROUPS
        return (section,)


class SysctlDocument(_Document):
    def validate(self):
        self.options()

    def options(self):
        out = []
        for i, line in enumerate(self.lines):
            body = line.strip()
            if not body or body.startswith('#'):
                continue
            key, sep, value = body.partition('=')
            key = key.strip()
            if not sep or not _SYSCTL_KEY.match(key):
                raise _Unparsable('not a "key = value" line', i + 1, line)
            out.append(_Option(None, key, value.strip(), i, i + 1))
        return out

    def _insert(self, section, new):
        if self.lines and not self.lines[-1].endswith('\n'):
            self.lines[-1] += '\n'
        self.lines += new


def _split(body):
    colon, equal = body.find(':'), body.find('=')
    if colon < 0 or (0 <= equal < colon):
        key, sep, value = body.partition('=')
    else:
        key, sep, value = body.partition(':')
    return key.strip(), sep, value.strip()


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
        return value[1:-1]
    return value


_DOCUMENTS = {'ini': IniDocument, 'mycnf': MyCnfDocument,
              'sysctl': SysctlDocument}


def to_int(raw):
    """An option's integer value (MariaDB's K/M/G suffixes allowed)."""
    text = raw.strip()
    scale = {'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3}.get(
        text[-1:].lower(), 1)
    if scale != 1:
        text = text[:-1]
    return int(text) * scale
