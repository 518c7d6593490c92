"""The dm backend's cache device: SSD group, slices, per-image dm-cache.

One or more local SSDs (``[fastboot_dm] cache_device``; several are
joined end to end by ``fb-<id>-ssd-group``, a dm-linear "SSD group") hold
every image's cache. Each image gets a metadata and a data slice, cut
first fit on 1 MiB boundaries, and this stack::

    origin block device(s)
      -> fb-<id>-origin-<image>   dm-linear over the origin segments
    fb-<id>-cmeta-<image>         dm-linear slice: dm-cache metadata
    fb-<id>-cdata-<image>         dm-linear slice: dm-cache data
    fb-<id>-cache-<image>         dm-cache (smq, writethrough) over origin

Stale blocks: a dm-cache serves only the blocks its metadata maps. A
metadata slice is wiped (its superblock zeroed, so dm-cache formats empty
metadata) whenever it is given to an image and again when the image is
removed; it is kept across a deactivate/activate only when the cache was
shut down cleanly.
"""

from fastboot_nova import exception
import fastboot_nova.privsep.dm
from fastboot_nova.storage.dm import kernel

#: The name of the SSD group device (kind ``ssd``).
SSD_GROUP = 'group'


class CacheDevice:
    """The configured cache device(s) of one engine and their slices."""

    def __init__(self, state, devices, dm, members, lock):
        """Keep the engine's parts this one works with.

        :param state: the engine's :class:`StateFile`.
        :param devices: :class:`kernel.HostDevices` (or a fake).
        :param dm: the engine's :class:`kernel.DeviceNames`.
        :param members: the configured cache devices, in order.
        :param lock: ``lock(kind, name)``, the engine's lock factory.
        """
        self.state = state
        self.devices = devices
        self.dm = dm
        self.lock = lock
        #: The configured cache devices, in order.
        self.members = list(members)
        self.group_name = dm.name('ssd', SSD_GROUP)
        #: What the image slices are cut from: the one cache device, or
        #: the SSD group over several.
        self.device = (self.dm.path(self.group_name)
                       if len(self.members) > 1 else
                       (self.members[0] if self.members else None))

    # -- the device and the SSD group --------------------------------------

    def check(self, st):
        """The device to cut a new slice from; refuse a changed config."""
        device = self.device
        if not device:
            raise kernel.CacheDeviceError(
                device=None, reason='[fastboot_dm] cache_device is not set')
        dm_st = st.get('dm', {})
        recorded = (dm_st.get('cache_device'),
                    [m[0] for m in dm_st.get('cache_members', [])] or
                    [dm_st.get('cache_device')])
        if st['images'] and recorded != (device, self.members):
            raise kernel.CacheDeviceError(
                device=','.join(self.members),
                reason='images are cached on %s; remove them before '
                       'changing cache_device' % ','.join(recorded[1]))
        if len(set(self.members)) != len(self.members):
            raise kernel.CacheDeviceError(device=','.join(self.members),
                                          reason='a device is listed twice')
        for member in self.members:
            try:
                fastboot_nova.privsep.dm.check_device(member, 'cache_device',
                                                      must_exist=False)
            except fastboot_nova.privsep.dm.InvalidDmArgument as e:
                raise kernel.CacheDeviceError(device=member, reason=e.msg)
            if not self.devices.is_block(member):
                raise kernel.CacheDeviceError(device=member,
                                              reason='not a block device')
        if len(self.members) > 1:
            members = dm_st.get('cache_members') if st['images'] else None
            self.ensure_group(members or [
                [m, self.devices.sectors(m), self.devices.identity(m)]
                for m in self.members])
        return device

    def ensure_group(self, members):
        """Join ``members`` (``[device, sectors, identity]``) into the
        SSD group unless it is live; record them.

        A group is rebuilt from what was recorded, in the recorded order,
        and only over the same devices: another order or device would put
        every image's cache slices on other blocks.
        """
        if self.group_name not in self.dm.live():
            for dev, sectors, identity in members:
                if not self.devices.is_block(dev) or \
                        self.devices.identity(dev) != identity or \
                        self.devices.sectors(dev) != sectors:
                    raise kernel.CacheDeviceError(
                        device=dev, reason='it is not the device the SSD '
                        'group was built on (%s); restore it, or remove '
                        'every image before changing cache_device' %
                        identity)
            fastboot_nova.privsep.dm.create_linear(
                self.group_name,
                [(dev, 0, sectors) for dev, sectors, _i in members])
        with self.state.update() as st:
            st.setdefault('dm', {})['cache_members'] = members
        return self.dm.path(self.group_name)

    def ensure_slice_device(self, device, live):
        """Make sure the device an image's slices are on is there."""
        if device == self.dm.path(self.group_name) and \
                self.group_name not in live:
            members = self.state.read().get('dm', {}).get('cache_members')
            if not members:
                raise kernel.CacheDeviceError(device=device,
                                              reason='its members were not '
                                                     'recorded')
            self.ensure_group(members)
            live.add(self.group_name)

    def is_group(self, device):
        return device == self.dm.path(self.group_name)

    def group_idle(self, live=None):
        """Remove the SSD group once no image has a slice of it."""
        if not self.state.read()['images']:
            self.dm.remove_if_present(self.group_name, live)

    def allocate(self, st, sectors):
        """First fit of ``sectors`` on the cache device; return start."""
        total = self.devices.sectors(self.device)
        used = sorted((e['cache']['start'],
                       e['cache']['start'] + e['cache']['meta_sectors'] +
                       e['cache']['data_sectors'])
                      for e in st['images'].values() if 'cache' in e)
        pos = 0
        for start, end in used + [(total, total)]:
            if pos + sectors <= start:
                return pos
            pos = max(pos, kernel.round_up(end, kernel.ALIGN_SECTORS))
        free = max(0, total - sum(e - s for s, e in used))
        raise exception.CacheFull(image='?', path=self.device,
                                  need=sectors * kernel.SECTOR,
                                  free=free * kernel.SECTOR)

    # -- one image's stack -----------------------------------------------

    def image_devices(self, image):
        """Device names of an image, in creation order."""
        return [self.dm.name(k, image)
                for k in ('origin', 'cmeta', 'cdata', 'cache')]

    def build(self, image, entry, live, wipe):
        """Create the image's missing devices, in order."""
        origin, cmeta, cdata, cache = self.image_devices(image)
        c = entry['cache']
        self.ensure_slice_device(c['device'], live)
        if origin not in live:
            fastboot_nova.privsep.dm.create_linear(
                origin, [tuple(s) for s in entry['segments']])
        if cmeta not in live:
            self.create_meta(image, c)
        if cdata not in live:
            fastboot_nova.privsep.dm.create_linear(
                cdata, [(c['device'], c['start'] + c['meta_sectors'],
                         c['data_sectors'])])
        if cache not in live:
            if wipe:
                fastboot_nova.privsep.dm.wipe_header(cmeta,
                                                     kernel.WIPE_BYTES)
            # From now on the metadata is in use: only a clean remove of
            # the cache makes it trustworthy again.
            with self.state.update() as st:
                if image in st['images']:
                    st['images'][image]['clean'] = False
            fastboot_nova.privsep.dm.create_cache(
                cache, self.dm.path(cmeta), self.dm.path(cdata),
                self.dm.path(origin), c['block_sectors'], c['mode'])

    def create_meta(self, image, c):
        fastboot_nova.privsep.dm.create_linear(
            self.dm.name('cmeta', image),
            [(c['device'], c['start'], c['meta_sectors'])])

    def teardown(self, image, live, wipe):
        """Remove the image's devices, last created first."""
        origin, cmeta, cdata, cache = self.image_devices(image)
        if self.dm.remove_if_present(cache, live):
            # A clean remove flushed and closed the metadata.
            with self.state.update() as st:
                if image in st['images']:
                    st['images'][image]['clean'] = True
        if wipe and cmeta in live:
            fastboot_nova.privsep.dm.wipe_header(cmeta, kernel.WIPE_BYTES)
        for name in (cdata, cmeta, origin):
            self.dm.remove_if_present(name, live)

    def stats(self, image):
        """dm-cache counters of ``image`` (None when it is not active)."""
        name = self.dm.name('cache', image)
        if name not in self.dm.live():
            return None
        return kernel.parse_cache_status(
            fastboot_nova.privsep.dm.status(name))
