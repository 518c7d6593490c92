"""Write the INI files of the OpenStack services from plain dicts."""


def render(sections):
    """``{'DEFAULT': {'debug': True}}`` -> INI text (None values skipped)."""
    out = []
    for section, options in sections.items():
        out.append('[%s]' % section)
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            out.append('%s = %s' % (key, value))
        out.append('')
    return '\n'.join(out)


def write(path, sections, mode=0o600):
    """Write ``sections`` to ``path``; readable by root only (passwords)."""
    path.write_text(render(sections))
    path.chmod(mode)
    return path
