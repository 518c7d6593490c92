"""URLconf of the live Horizon: Horizon's, after installing the fakes
(an URLconf is imported once the apps are ready; settings are not).
"""

from openstack_dashboard import urls as dashboard_urls

from tests.dashboard import horizon_fakes

horizon_fakes.install()

urlpatterns = dashboard_urls.urlpatterns
