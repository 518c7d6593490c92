"""``generate`` output: an annotated INI text or YAML data."""

import dataclasses

import yaml

from fastboot_nova.tuning import setting

TITLES = {
    'nova': 'nova.conf (every Nova service; one file on an all-in-one '
            'host)',
    'nova-cpu': 'nova-cpu.conf (a compute-only file: the compute subset)',
    'cinder': 'cinder.conf',
    'placement': 'placement.conf',
    'rabbitmq': 'rabbitmq.conf',
    'mariadb': 'my.cnf (or a file in mariadb.conf.d)',
    'system': 'service limits (systemd LimitNOFILE; not in a config file)',
}


def as_ini(profile):
    i = profile.inputs
    out = ['# fastboot-tune: %d servers on %d computes, %s; C=%d S=%d W=%d'
           % (i.servers, i.computes, i.concurrency_backend, i.conductors,
              i.schedulers, i.api_workers)]
    out += ['# %s: %s' % (name, value) for name, value in profile.figures]
    out += ['# note: %s' % note for note in profile.notes]
    for kind in setting.KINDS:
        out += ['', '# ==== %s ====' % TITLES[kind]]
        section = object()
        for s in _by_section(profile.for_kind(kind)):
            if kind != 'system' and s.section != section:
                section = s.section
                if section is not None:
                    out += ['[%s]' % section]
            out += ['# %s' % s.reason, '#   formula: %s' % s.formula]
            line = '%s = %s' % (s.name, s.value)
            out.append('# ' + line if kind == 'system' else line)
    return '\n'.join(out) + '\n'


def _by_section(settings):
    order = {}
    for s in settings:
        order.setdefault(s.section, len(order))
    return sorted(settings, key=lambda s: order[s.section])


def as_data(profile):
    files = {}
    for kind in setting.KINDS:
        files[kind] = [
            {'section': s.section, 'name': s.name, 'value': s.value,
             'fails_if': ('below' if s.compare == setting.AT_LEAST
                          else 'above'),
             'default': s.default, 'reason': s.reason,
             'formula': s.formula}
            for s in profile.for_kind(kind)]
    return {'inputs': dataclasses.asdict(profile.inputs),
            'figures': dict(profile.figures),
            'notes': list(profile.notes),
            'files': files}


def as_yaml(profile):
    return yaml.safe_dump(as_data(profile), sort_keys=False, width=79)


RENDERERS = {'ini': as_ini, 'yaml': as_yaml}
