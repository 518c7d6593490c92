"""The structure of .zuul.yaml: jobs, parents, devstack variables, the
tox environments and files it names.

Zuul only reads the file on the CI system; a typo there (a job in the
project pipelines that is not defined, a tox environment that does not
exist, a service the plugin does not know) would only show there.
"""

import configparser
import os
import re

import testtools
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

#: Jobs defined elsewhere (zuul-jobs, openstack-zuul-jobs, devstack).
EXTERNAL_PARENTS = {'devstack', 'devstack-tempest', 'openstack-tox'}
#: The tox environments CI must run.
TOX_JOBS = {'pep8', 'py3', 'functional', 'devstack', 'docs',
            'releasenotes'}


def load_zuul():
    with open(os.path.join(REPO, '.zuul.yaml')) as f:
        return yaml.safe_load(f)


def tox_envs():
    parser = configparser.RawConfigParser(strict=False,
                                          interpolation=None)
    parser.read(os.path.join(REPO, 'tox.ini'))
    return {s.split(':', 1)[1] for s in parser.sections()
            if s.startswith('testenv:')}


def plugin_services():
    """The services devstack/settings enables."""
    with open(os.path.join(REPO, 'devstack', 'settings')) as f:
        text = f.read()
    services = set()
    for line in re.findall(r'^enable_service (.+)$', text, re.M):
        services.update(line.split())
    return services


class TestZuulFile(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.items = load_zuul()
        self.jobs = {}
        for item in self.items:
            self.assertIsInstance(item, dict)
            self.assertEqual(1, len(item), item)
            if 'job' in item:
                name = item['job']['name']
                self.assertNotIn(name, self.jobs, 'job defined twice')
                self.jobs[name] = item['job']
        self.projects = [i['project'] for i in self.items if 'project' in i]

    def vars(self, name):
        """A job's variables merged over its parents', as Zuul does."""
        job = self.jobs[name]
        parent = job.get('parent')
        merged = self.vars(parent) if parent in self.jobs else {}
        return _merge(merged, job.get('vars', {}))

    def test_only_jobs_and_one_project(self):
        self.assertEqual({'job', 'project'},
                         {key for item in self.items for key in item})
        self.assertEqual(1, len(self.projects))

    def test_parents_exist(self):
        for name, job in self.jobs.items():
            parent = job.get('parent')
            self.assertIsNotNone(parent, name)
            self.assertIn(parent, set(self.jobs) | EXTERNAL_PARENTS, name)
            self.assertTrue(job.get('description'), name)

    def test_pipelines_run_defined_jobs(self):
        project = self.projects[0]
        for pipeline in ('check', 'gate'):
            jobs = project[pipeline]['jobs']
            self.assertTrue(jobs, pipeline)
            for job in jobs:
                self.assertIn(job, self.jobs, pipeline)
        # Every job runs in check; the devstack job and the tox jobs gate.
        self.assertEqual(set(self.jobs), set(project['check']['jobs']))
        self.assertIn('fastboot-devstack', project['gate']['jobs'])

    def test_devstack_job(self):
        job = self.jobs['fastboot-devstack']
        self.assertIn(job['parent'], ('devstack', 'devstack-tempest'))
        self.assertTrue(os.path.isfile(os.path.join(REPO, job['run'])))
        with open(os.path.join(REPO, job['run'])) as f:
            playbook = f.read()
        self.assertIn('orchestrate-devstack', playbook)
        self.assertIn('gate/devstack/boot-batch.sh', playbook)
        self.assertTrue(os.path.isfile(os.path.join(
            REPO, 'gate', 'devstack', 'boot-batch.sh')))
        variables = self.vars('fastboot-devstack')
        self.assertIn('fastboot', variables['devstack_plugins'])
        localrc = variables['devstack_localrc']
        self.assertEqual('libvirt', localrc['VIRT_DRIVER'])
        self.assertEqual('qemu', localrc['LIBVIRT_TYPE'])
        self.assertGreaterEqual(variables['fastboot_check_servers'], 2)
        services = variables['devstack_services']
        for service in plugin_services():
            self.assertIs(True, services.get(service), service)
        self.assertIn('$NOVA_CONF',
                      variables['devstack_local_conf']['post-config'])

    def test_storm_fake_job(self):
        variables = self.vars('fastboot-storm-fake')
        localrc = variables['devstack_localrc']
        self.assertEqual('fake', localrc['VIRT_DRIVER'])
        computes = localrc['NUMBER_FAKE_NOVA_COMPUTE']
        self.assertIsInstance(computes, int)
        self.assertGreaterEqual(computes, 2)
        self.assertEqual(computes, localrc['FASTBOOT_TUNE_COMPUTES'])
        self.assertGreaterEqual(variables['fastboot_check_servers'],
                                computes)
        # No FastBootDriver under the fake driver.
        self.assertIs(False,
                      variables['devstack_services']['fastboot-compute'])

    def test_services_are_the_plugins(self):
        known = plugin_services()
        for name in self.jobs:
            services = self.vars(name).get('devstack_services', {})
            for service in services:
                if service.startswith('fastboot'):
                    self.assertIn(service, known, name)

    def test_tox_jobs(self):
        envs = {}
        for name, job in self.jobs.items():
            if job.get('parent') == 'openstack-tox':
                envs[job['vars']['tox_envlist']] = name
        self.assertEqual(TOX_JOBS, set(envs))
        defined = tox_envs()
        for env in TOX_JOBS - {'docs', 'py3'}:
            self.assertIn(env, defined)
        # py3 is tox's [testenv] itself (an empty [testenv:py3]).
        self.assertIn('py3', defined)
        devstack = self.jobs[envs['devstack']]
        self.assertIn('openstack/devstack', devstack['required-projects'])
        self.assertIn('DEVSTACK_DIR', devstack['vars']['tox_environment'])

    def test_docs_job_has_its_tox_env(self):
        if not os.path.isfile(os.path.join(REPO, 'doc', 'source',
                                           'conf.py')):
            self.skipTest('no documentation site (doc/source/conf.py) in '
                          'this tree yet: issue 15 item 4 builds it, with '
                          'its docs tox environment, on its own branch')
        self.assertIn('docs', tox_envs())


def _merge(base, override):
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
