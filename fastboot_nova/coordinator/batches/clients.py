"""Sessions for the user and for a batch's trust; :class:`CloudFactory`.

The API checks a request as the user (their token, re-scoped to their
project by keystoneauth); the runner acts through the batch's trust, as
the ``[batches_auth]`` service user. Both build an
:class:`~.openstack.OpenStackCloud` on a keystoneauth session.
"""

from keystoneauth1 import loading as ks_loading

from fastboot_nova.conf import batches as batches_conf


#: Auth options that scope a token; a trust-scoped token takes none.
_OTHER_SCOPES = ('project_id', 'project_name', 'project_domain_id',
                 'project_domain_name', 'domain_id', 'domain_name',
                 'system_scope', 'tenant_id', 'tenant_name')


class CloudFactory:

    def __init__(self, conf):
        self.conf = conf

    def _auth_url(self):
        # The auth plugin's own options (auth_url among them) exist only
        # once the plugin is loaded from the config: the API's first
        # request comes here before anything else loaded it.
        ks_loading.load_auth_from_conf_options(self.conf,
                                               batches_conf.AUTH_GROUP)
        return self.conf[batches_conf.AUTH_GROUP].auth_url

    def for_user(self, ctx):
        from keystoneauth1.identity import v3

        from fastboot_nova.coordinator.batches import openstack
        auth = v3.Token(auth_url=self._auth_url(), token=ctx.auth_token,
                        project_id=ctx.project_id)
        return openstack.OpenStackCloud(self._session(auth), self.conf,
                                        trustee=self._trustee_id)

    def for_trust(self, trust_id):
        from fastboot_nova.coordinator.batches import openstack
        auth = self.trust_auth(trust_id)
        return openstack.OpenStackCloud(self._session(auth), self.conf)

    def trust_auth(self, trust_id):
        """The service user's auth, scoped to ``trust_id`` only.

        [batches_auth] names the service user's own project (the API and
        the trustee lookup need it); a trust is a scope of its own, and
        keystoneauth refuses a second one ("Authentication cannot be
        scoped to multiple targets"), so the other scopes are dropped.
        """
        group = batches_conf.AUTH_GROUP
        # Loading once registers the plugin's options, so their names
        # are known: only those can be overridden.
        ks_loading.load_auth_from_conf_options(self.conf, group)
        known = {opt.dest for opt in ks_loading.get_auth_plugin_conf_options(
            self.conf[group].auth_type)}
        unscoped = {name: None for name in _OTHER_SCOPES if name in known}
        return ks_loading.load_auth_from_conf_options(
            self.conf, group, trust_id=trust_id, **unscoped)

    def _session(self, auth):
        return ks_loading.load_session_from_conf_options(
            self.conf, batches_conf.AUTH_GROUP, auth=auth)

    def _trustee_id(self):
        """The runner's service user: the trustee of every trust."""
        auth = ks_loading.load_auth_from_conf_options(
            self.conf, batches_conf.AUTH_GROUP)
        return auth.get_user_id(self._session(auth))
