"""Fakes shared by the unit tests."""

import dataclasses
import json
import os

from fastboot_nova import exception
from fastboot_nova.storage import base
from fastboot_nova.storage import location as location_mod
from fastboot_nova.storage import names


class FakeEngine(base.Engine):
    """An in-memory engine: the base.Engine contract, no processes.

    ``calls`` records every call as ``(verb, args...)``.
    """

    capabilities = dict(base.Engine.capabilities, snapshot=True,
                        migrate=True, prefetch=True)

    def __init__(self, conf=None, state_path='/fake/state', execute=None):
        self.conf = conf
        self.state_path = state_path
        self.images = {}
        self.vms = {}
        self.calls = []
        self.running = True
        self.exports_error = None  # ensure_exports raises it

    def _disk(self, vm):
        return self.vms[vm]

    def ensure_exports(self):
        self.calls.append(('ensure_exports',))
        if self.exports_error:
            raise exception.DaemonError(reason=self.exports_error)

    def _vm(self, vm):
        names.validate(vm, 'VM')
        if vm not in self.vms:
            raise exception.VmNotFound(vm=vm)
        return self.vms[vm]

    def _new_disk(self, vm, image):
        if vm in self.vms:
            raise exception.VmExists(vm=vm)
        disk = base.VmDisk(name=vm, image=image,
                           path=os.path.join(self.state_path, 'vms',
                                             vm + '.qcow2'))
        self.vms[vm] = disk
        return disk

    def add_image(self, image, location):
        self.calls.append(('add_image', image, location))
        names.validate(image, 'image')
        return self._cache(image, location)

    def _cache(self, image, location):
        loc = location_mod.parse(location)
        known = self.images.get(image)
        if known is not None and known.location != loc.url:
            raise exception.ImageConflict(image=image,
                                          existing=known.location,
                                          location=loc.url)
        if known is None:
            self.images[image] = base.CachedImage(
                name=image, location=loc.url, virtual_size=1 << 20,
                cached_bytes=0,
                export_url='nbd+unix:///%s?socket=%s/nbd.sock' % (
                    image, self.state_path))
        return self.images[image]

    def create(self, vm, image, location):
        self.calls.append(('create', vm, image, location))
        names.validate(vm, 'VM')
        names.validate(image, 'image')
        self._cache(image, location)
        return self._new_disk(vm, image)

    def destroy(self, vm):
        self.calls.append(('destroy', vm))
        self._vm(vm)
        del self.vms[vm]

    def snapshot(self, vm, name, location):
        self.calls.append(('snapshot', vm, name, location))
        self._vm(vm)
        names.validate(name, 'snapshot')
        return os.path.join(os.path.abspath(location), name + '.qcow2')

    def clone(self, vm, destination):
        self.calls.append(('clone', vm, destination))
        disk = self._vm(vm)
        names.validate(destination, 'VM')
        return self._new_disk(destination, disk.image)

    def migrate(self, vm, destination):
        self.calls.append(('migrate', vm, destination))
        disk = self._vm(vm)
        del self.vms[vm]
        return base.VmDisk(name=vm, image=disk.image,
                           path=os.path.join(destination, 'vms',
                                             vm + '.qcow2'))

    def list(self):
        self.calls.append(('list',))
        return [self.vms[vm] for vm in sorted(self.vms)]

    def get_disk(self, name):
        self.calls.append(('get_disk', name))
        return self.vms.get(name)

    def get_image(self, name):
        self.calls.append(('get_image', name))
        return next((i for i in self._images() if i.name == name), None)

    def list_images(self):
        self.calls.append(('list_images',))
        return self._images()

    def _images(self):
        result = []
        for name in sorted(self.images):
            users = tuple(sorted(vm for vm, d in self.vms.items()
                                 if d.image == name))
            image = self.images[name]
            result.append(base.CachedImage(
                name=image.name, location=image.location,
                virtual_size=image.virtual_size,
                cached_bytes=image.cached_bytes,
                export_url=image.export_url, vms=users,
                parents=image.parents))
        return result

    def prefetch(self, image, progress=None):
        self.calls.append(('prefetch', image))
        names.validate(image, 'image')
        if image not in self.images:
            raise exception.ImageNotFound(image=image)
        total = self.images[image].virtual_size
        if progress is not None:
            for done in (0, total // 2, total):
                progress(done, total)
        entry = self.images[image]
        self.images[image] = dataclasses.replace(entry, cached_bytes=total)
        return self.get_image(image)

    def reparent(self, image, location, alternates=()):
        self.calls.append(('reparent', image, location) +
                          ((tuple(alternates),) if alternates else ()))
        names.validate(image, 'image')
        for url in [location] + list(alternates):
            location_mod.parse(url)
        if image not in self.images:
            raise exception.ImageNotFound(image=image)
        entry = self.images[image]
        # As the qemu engine: parents in order, without the origin.
        parents = []
        for url in [location] + list(alternates):
            if url != entry.location and url not in parents:
                parents.append(url)
        self.images[image] = dataclasses.replace(entry,
                                                 parents=tuple(parents))

    def remove_image(self, image):
        self.calls.append(('remove_image', image))
        names.validate(image, 'image')
        if image not in self.images:
            raise exception.ImageNotFound(image=image)
        users = sorted(vm for vm, d in self.vms.items() if d.image == image)
        if users:
            raise exception.ImageInUse(image=image, vms=', '.join(users))
        del self.images[image]

    def reconcile(self):
        self.calls.append(('reconcile',))
        return base.ReconcileReport(orphan_disks=['lost'])

    def shutdown(self):
        self.calls.append(('shutdown',))
        self.running = False


def edit_state(state_path, change):
    """Edit ``state_path``'s state file as an attacker would; return it."""
    path = os.path.join(state_path, 'state.json')
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, 'w') as f:
        json.dump(data, f)
    return data
