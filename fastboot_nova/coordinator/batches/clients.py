"""Sessions for the user and for a batch's trust; :class:`CloudFactory`.

The API checks a request as the user (their token, re-scoped to their
project by keystoneauth); the runner acts through the batch's trust, as
the ``[batches_auth]`` service user. Both build an
:class:`~.openstack.OpenStackCloud` on a keystoneauth session.
"""

from keystoneauth1 import loading as ks_loading

from fastboot_nova.conf import batches as batches_conf


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
        auth = ks_loading.load_auth_from_conf_options(
            self.conf, batches_conf.AUTH_GROUP, trust_id=trust_id)
        return openstack.OpenStackCloud(self._session(auth), self.conf)

    def _session(self, auth):
        return ks_loading.load_session_from_conf_options(
            self.conf, batches_conf.AUTH_GROUP, auth=auth)

    def _trustee_id(self):
        """The runner's service user: the trustee of every trust."""
        auth = ks_loading.load_auth_from_conf_options(
            self.conf, batches_conf.AUTH_GROUP)
        return auth.get_user_id(self._session(auth))
