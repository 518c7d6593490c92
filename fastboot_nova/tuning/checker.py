"""``check``: which live settings will fail at the stated storm, and why."""

import dataclasses

from fastboot_nova.tuning import configfile


@dataclasses.dataclass(frozen=True)
class Finding:
    """One setting of one file, judged."""

    path: str
    kind: str
    setting: object
    #: The raw value in the file, or None when unset (default applies).
    live: str | None
    #: None when it passes; else why it fails, one line.
    problem: str | None

    @property
    def failed(self):
        return self.problem is not None

    def line(self):
        state = 'FAIL' if self.failed else 'ok'
        shown = self.live if self.live is not None else '(unset)'
        text = '%s %s %s = %s' % (state, self.path, self.setting.label(),
                                  shown)
        return text + (': ' + self.problem if self.failed else '')


def evaluate(profile, files):
    """Every setting of every file judged, in file order.

    ``files`` are :class:`configfile.ConfigFile`; all are read first, so
    a missing or unparsable file raises ConfigFileError before anything
    is judged.
    """
    docs = [(f, f.read()) for f in files]
    return [finding for f, doc in docs
            for finding in judge(profile, f.kind, f.path, doc)]


def judge(profile, kind, path, doc):
    out = []
    for setting in profile.for_kind(kind):
        raw = doc.get(setting.section, setting.name)
        out.append(Finding(path, kind, setting, raw, _problem(setting, raw)))
    return out


def _problem(setting, raw):
    if raw is None:
        return setting.judge(None)
    try:
        value = configfile.to_int(raw)
    except ValueError:
        return 'not an integer: %r' % raw
    return setting.judge(value)


def check(profile, files):
    """The settings that will fail (an empty list when all pass)."""
    return [f for f in evaluate(profile, files) if f.failed]
