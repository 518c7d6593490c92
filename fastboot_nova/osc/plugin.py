"""OSC plugin entry: ``openstack.cli.extension = fastboot``.

The endpoint comes from the Keystone catalog (service type ``fastboot``,
as devstack registers it) through the OSC session, or from
``--os-endpoint`` with admin_token/none auth.
"""

from osc_lib import utils

from fastboot_nova.osc import client

DEFAULT_API_VERSION = '1'
API_VERSION_OPTION = 'os_fastboot_api_version'
API_NAME = 'fastboot'
API_VERSIONS = {'1': 'fastboot_nova.osc.client.Client'}


def make_client(instance):
    return client.Client(session=instance.session,
                         region_name=instance.region_name,
                         interface=instance.interface)


def build_option_parser(parser):
    parser.add_argument(
        '--os-fastboot-api-version', metavar='<fastboot-api-version>',
        default=utils.env('OS_FASTBOOT_API_VERSION',
                          default=DEFAULT_API_VERSION),
        help='fastboot API version, default=%s (Env: '
             'OS_FASTBOOT_API_VERSION)' % DEFAULT_API_VERSION)
    return parser
