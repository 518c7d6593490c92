"""ministack: a real OpenStack on one machine, for fastboot's scenario tests.

Not part of the installed product (``fastboot_nova``): a test harness that
starts MariaDB, RabbitMQ, Keystone, Placement, Glance, Neutron and Nova as
real processes on 127.0.0.1, with nova-compute running fastboot's driver
over a real libvirtd. See README.rst beside this file.
"""
