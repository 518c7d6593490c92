"""One tuned value, where it goes, why, and when a live value fails.

A :class:`Setting` is data: the formulas build them, ``check`` compares
live files against them, ``apply`` writes them, and ``generate`` prints
them. Nothing else decides what a setting means.
"""

import dataclasses

#: Files a profile has settings for. ``nova`` is a nova.conf read by any
#: Nova service (all roles: one file on an all-in-one host, or the
#: controller's file); ``nova-cpu`` is a compute-only file (devstack's
#: nova-cpu.conf); ``system`` settings live in no file (service limits
#: such as LimitNOFILE) and are only printed.
KINDS = ('nova', 'nova-cpu', 'cinder', 'placement', 'rabbitmq', 'mariadb',
         'system')

#: Nova roles; a ``nova-cpu`` file gets the settings of the compute role.
ROLES = ('api', 'conductor', 'scheduler', 'compute')
ALL_ROLES = frozenset(ROLES)
CONTROL_ROLES = frozenset(('api', 'conductor', 'scheduler'))

#: How a live value is judged: ``min`` fails below the value, ``max``
#: fails above it; ``unlimited`` is a value that always passes a ``min``
#: (Nova's quota -1).
AT_LEAST = 'min'
AT_MOST = 'max'


@dataclasses.dataclass(frozen=True)
class Setting:
    """A value the storm needs, with its reason and its formula."""

    target: str
    section: str | None
    name: str
    value: int
    compare: str
    #: What the service uses when the file does not set it; None when
    #: that depends on the host (e.g. workers = CPU count), so an unset
    #: value cannot be judged and fails.
    default: int | None
    reason: str
    formula: str
    roles: frozenset = ALL_ROLES
    unlimited: int | None = None

    @property
    def key(self):
        return (self.target, self.section, self.name)

    def label(self):
        if self.section is None:
            return self.name
        return '[%s] %s' % (self.section, self.name)

    def judge(self, live):
        """Return None if ``live`` (an int, or None for unset) passes.

        Otherwise return why it fails, one line.
        """
        shown = live
        if live is None:
            if self.default is None:
                return ('the default depends on the host, needs %s %d: %s'
                        % (self._word(), self.value, self.reason))
            live = self.default
            shown = '%d (default)' % live
        if self.unlimited is not None and live == self.unlimited:
            return None
        if self.compare == AT_LEAST and live < self.value:
            return '%s, needs >= %d: %s' % (shown, self.value, self.reason)
        if self.compare == AT_MOST and live > self.value:
            return '%s, needs <= %d: %s' % (shown, self.value, self.reason)
        return None

    def _word(self):
        return '>=' if self.compare == AT_LEAST else '<='


@dataclasses.dataclass(frozen=True)
class Profile:
    """Every setting for one storm, plus notes on what they assume."""

    inputs: object
    settings: tuple
    notes: tuple = ()
    #: Figures the settings were derived from (connection budgets...).
    figures: tuple = ()

    def for_kind(self, kind):
        """The settings a file of ``kind`` must carry, one per option.

        Nova's roles share option names (executor_thread_pool_size is read
        by the conductor and by the compute): in one file the stricter
        value wins, so every role reading the file is served.
        """
        if kind == 'nova-cpu':
            chosen = [s for s in self.settings
                      if s.target == 'nova' and 'compute' in s.roles]
        else:
            chosen = [s for s in self.settings if s.target == kind]
        merged = {}
        for setting in chosen:
            key = (setting.section, setting.name)
            merged[key] = _stricter(merged.get(key), setting)
        return tuple(merged.values())


def _stricter(old, new):
    if old is None:
        return new
    if new.compare == AT_LEAST:
        return new if new.value > old.value else old
    return new if new.value < old.value else old
