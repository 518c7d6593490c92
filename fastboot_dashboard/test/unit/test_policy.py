"""The plugin's default policy file mirrors the coordinator's rules, and
the panel needs the fastboot service in the catalog."""

import os

from django.urls import reverse
import yaml

from fastboot_dashboard.content.batches import panel
from fastboot_dashboard.content.batches import policy
from fastboot_dashboard.test import helpers
from fastboot_nova.coordinator import batch_policy
from fastboot_nova.coordinator import policy as coordinator_policy

DEFAULTS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(policy.__file__)))),
    'conf', 'default_policies', 'fastboot.yaml')


class PolicyFileTests(helpers.TestCase):

    def test_defaults_match_the_coordinator(self):
        with open(DEFAULTS) as f:
            shipped = {r['name']: r['check_str'] for r in yaml.safe_load(f)}
        rules = {r.name: r.check_str for r in
                 list(coordinator_policy.list_rules()) + batch_policy.RULES}
        for name, check in shipped.items():
            self.assertEqual(rules[name], check, name)
        for _scope, name in policy.READ + policy.CREATE + policy.DELETE:
            self.assertIn(name, shipped)

    def test_panel_needs_the_fastboot_service(self):
        self.assertEqual(('openstack.services.fastboot',),
                         panel.Batches.permissions)
        catalog = [s for s in self.service_catalog
                   if s['type'] != 'fastboot']
        self.setActiveUser(
            id=self.user.id, token=self.token, username=self.user.name,
            tenant_id=self.tenant.id, service_catalog=catalog,
            authorized_tenants=self.tenants.list(),
            roles=[{'id': '2', 'name': 'member'}])
        res = self.client.get(
            reverse('horizon:project:fastboot_batches:index'))
        self.assertNotEqual(200, res.status_code)
