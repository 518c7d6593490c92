"""Helpers shared by the ``fastboot`` commands: argument types, columns."""

import argparse
import dataclasses
import os

from cliff import columns

from fastboot_nova import exception
from fastboot_nova.storage import location as location_mod
from fastboot_nova.storage import names


class ListColumn(columns.FormattableColumn):
    """A list: comma-separated in tables, a JSON list with ``-f json``."""

    def human_readable(self):
        return ', '.join(str(v) for v in self._value)

    def machine_readable(self):
        return list(self._value)


def engine_for(app, capability, verb):
    """The engine, if its backend declares ``capability``.

    Else a clear error naming the backend, before anything runs.
    """
    engine = app.get_engine()
    if not engine.supports(capability):
        raise exception.FastbootException(
            'the %s backend cannot %s' % (app.get_conf().fastboot.backend,
                                          verb))
    return engine


def name_type(kind):
    """An argparse ``type`` that accepts only safe ``kind`` names."""

    def check(value):
        try:
            return names.validate(value, kind)
        except exception.InvalidName as e:
            raise argparse.ArgumentTypeError(e.msg)

    check.__name__ = '%s name' % kind
    return check


def origin_location(value):
    """An argparse ``type`` for an origin: a local file/device or NBD URL.

    The value is checked, and passed on unchanged: the engine parses it
    again, relative paths included.
    """
    try:
        location_mod.parse(value)
    except exception.InvalidLocation as e:
        raise argparse.ArgumentTypeError(e.msg)
    return value


def existing_directory(value):
    """An argparse ``type`` for a directory that must already exist."""
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(
            '%r is not an existing directory' % value)
    return value


def positive_int(low, high):
    """An argparse ``type`` for an integer in ``[low, high]``."""

    def check(value):
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError('%r is not a number' % value)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(
                '%d is not between %d and %d' % (number, low, high))
        return number

    check.__name__ = 'number'
    return check


def show(obj, extra=None):
    """``(columns, values)`` of a dataclass, for a ShowOne command.

    Lists and tuples become :class:`ListColumn`.
    """
    data = dataclasses.asdict(obj)
    data.update(extra or {})
    keys = tuple(data)
    return keys, tuple(_column(data[k]) for k in keys)


def rows(objs, keys):
    """The rows of a Lister command over dataclasses ``objs``."""
    return [tuple(_column(getattr(obj, k)) for k in keys) for obj in objs]


def _column(value):
    if isinstance(value, (list, tuple)):
        return ListColumn(value)
    return value
