"""The control-plane tuning profile for boot storms (``fastboot-tune``).

A storm of N servers on H computes is turned into settings for nova.conf,
cinder.conf, placement.conf, rabbitmq.conf and my.cnf, each with a
one-line reason and the formula it came from. The Python API is what the
CLI, the devstack plugin and the storm benchmark call::

    from fastboot_nova import tuning
    profile = tuning.generate(tuning.Inputs(servers=500, computes=4))
    files = [tuning.ConfigFile.from_arg('/etc/nova/nova.conf')]
    failures = tuning.check(profile, files)    # [] when ready
    every = tuning.evaluate(profile, files)    # passing ones too
    changes = tuning.apply(profile, files)     # writes, with a backup

Modules, one job each: ``inputs`` (the storm, validated), ``assumptions``
(the costs formulas assume), ``budget`` (shared figures: builds in flight,
threads, DB connections), ``nova``/``cinder``/``placement``/``rabbitmq``/
``mariadb`` (the formulas per service), ``profile`` (generate),
``configfile`` (reading live files of each format), ``checker``, ``writer``
(apply), ``render`` (ini/yaml output).
"""

from fastboot_nova.tuning.checker import check  # noqa: F401
from fastboot_nova.tuning.checker import evaluate  # noqa: F401
from fastboot_nova.tuning.configfile import ConfigFile  # noqa: F401
from fastboot_nova.tuning.exception import ConfigFileError  # noqa: F401
from fastboot_nova.tuning.exception import ImpossibleInput  # noqa: F401
from fastboot_nova.tuning.exception import TuningError  # noqa: F401
from fastboot_nova.tuning.inputs import Inputs  # noqa: F401
from fastboot_nova.tuning.profile import generate  # noqa: F401
from fastboot_nova.tuning.writer import apply  # noqa: F401
