"""Boot storms on real Nova services as processes (``tox -e bench-storm``).

``python -m gate.stormnova`` brings up MariaDB, RabbitMQ, Keystone,
Glance, Neutron (ministack's service modules), placement, nova-api
(gunicorn), nova-conductor, nova-scheduler and K nova-compute processes
with distinct host names, all on 127.0.0.1, and boots storms of N
servers through the Nova API, with the stock defaults and with the
``fastboot-tune`` profile applied, in one run.

What is real and what is not:

- real: every OpenStack service process, RPC over RabbitMQ, the
  databases on MariaDB, Keystone tokens, placement claims, the compute
  manager, Nova's LibvirtDriver and FastBootDriver above the libvirt
  binding, the image cache and each server's qcow2 disk (qemu-img);
- simulated: the hypervisor. Each compute runs nova-compute over nova's
  own fake libvirt (:mod:`gate.stormnova.fakecompute`), so no QEMU guest
  starts; that is what lets a shared 2-core machine hold hundreds of
  servers;
- left out: Cinder (and so the attachment calls of fastboot servers
  and the stock volume-per-server comparison) and libvirtd: the storm
  boots from a tiny Glance image, so FastBootDriver takes Nova's image
  path. ministack's Cinder runs on Ceph, too heavy to restart per profile
  next to hundreds of servers here; RabbitMQ runs with its defaults in
  both profiles (the profile's rabbitmq.conf settings need a restart of
  the broker, not done yet).
"""
