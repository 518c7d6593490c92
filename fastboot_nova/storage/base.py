"""The engine interface both backends implement.

The verbs are VirtMan's (paper, Table 2) plus ``prefetch`` and the cache
administration calls. An engine owns one host's cache group: any number of
images (shared read-only origins, each cached once) and any number of VMs,
each with a private persistent copy-on-write disk over one image's cache.
"""

import abc
import contextlib
import dataclasses
import hashlib
import logging
import os
import time

from oslo_concurrency import lockutils

from fastboot_nova import exception
from fastboot_nova.storage import names
from fastboot_nova.storage import state as state_mod

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VmDisk:
    """A VM's private snapshot over a cached image."""

    name: str
    image: str
    #: What a hypervisor opens: a qcow2 file for ``qemu``, a block device
    #: for ``dm``.
    path: str
    #: Bytes the VM has written (its copy-on-write layer), when known.
    written_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class CachedImage:
    """One origin held in the host cache group."""

    name: str
    location: str
    virtual_size: int
    #: Bytes of the origin already held in the local cache.
    cached_bytes: int
    #: Where children and local VMs read the cached image.
    export_url: str
    vms: tuple = ()
    #: Parent hosts' exports the cache reads missed blocks from now,
    #: preferred first; the origin, always read last, is not listed.
    parents: tuple = ()


@dataclasses.dataclass
class ReconcileReport:
    """What ``reconcile`` found and did."""

    daemon_restarted: bool = False
    #: Images whose cache and export were re-created.
    restored_images: list = dataclasses.field(default_factory=list)
    #: Images that could not be restored (origin unreachable...).
    failed_images: list = dataclasses.field(default_factory=list)
    #: Daemon nodes and cache files no state entry refers to.
    removed_orphan_nodes: list = dataclasses.field(default_factory=list)
    removed_orphan_caches: list = dataclasses.field(default_factory=list)
    #: Leftovers of interrupted operations.
    removed_temp_files: list = dataclasses.field(default_factory=list)
    #: VM creates interrupted after their disk was complete, now recorded.
    completed_vms: list = dataclasses.field(default_factory=list)
    #: VM creates interrupted before their disk was complete, now dropped.
    dropped_vms: list = dataclasses.field(default_factory=list)
    #: Images re-exported to other hosts (the export relay restarted or
    #: lost them).
    relayed_images: list = dataclasses.field(default_factory=list)
    #: Disks re-pointed at the cache export after its address changed.
    rebased_disks: list = dataclasses.field(default_factory=list)
    #: Disk files with no state entry: kept, never deleted automatically.
    orphan_disks: list = dataclasses.field(default_factory=list)
    #: State entries whose disk file is gone.
    missing_disks: list = dataclasses.field(default_factory=list)
    #: State entries that disagree with the paths the engine derives
    #: (edited outside fastboot): left alone, nothing deleted.
    corrupt_entries: list = dataclasses.field(default_factory=list)

    @property
    def clean(self):
        return not any(v for k, v in dataclasses.asdict(self).items()
                       if k != 'daemon_restarted')


class Engine(abc.ABC):
    """A host's block engine."""

    #: What this backend does beyond the common verbs, declared as data
    #: (as compute-hyperv's driver declares its capabilities): callers
    #: ask :meth:`supports`, never ``hasattr``.
    capabilities = {
        # snapshot(), migrate(), prefetch() work (else they raise).
        'snapshot': False,
        'migrate': False,
        'prefetch': False,
        # pool_status() and grow_pool(): one thin-pool holds the VMs'
        # writes.
        'thin_pool': False,
        # Origins attached through os-brick (``image add
        # --connection-info``) and re-attached by reconcile at another
        # path: relocate_origin().
        'attached_origins': False,
    }

    def supports(self, capability):
        """Whether the backend declares ``capability``."""
        if capability not in Engine.capabilities:
            raise KeyError('unknown engine capability %r' % capability)
        return bool(self.capabilities.get(capability))

    @abc.abstractmethod
    def create(self, vm, image, location):
        """Give ``vm`` a private disk over ``image``, cached from ``location``.

        The first create of an image on the host adds its origin to the cache
        group; later ones reuse it. ``location`` is a local file or block
        device, or an NBD URL (``nbd://host[:port]/export`` or
        ``nbd+unix:///export?socket=/path``).

        :returns: :class:`VmDisk`
        """

    @abc.abstractmethod
    def destroy(self, vm):
        """Delete ``vm``'s disk. The image stays cached for the next VM."""

    @abc.abstractmethod
    def snapshot(self, vm, name, location):
        """Save ``vm``'s disk as image file ``name`` in directory ``location``.

        :returns: the path of the new file.
        """

    @abc.abstractmethod
    def clone(self, vm, destination):
        """Make VM ``destination`` with a copy of ``vm``'s disk.

        :returns: :class:`VmDisk` of the new VM.
        """

    @abc.abstractmethod
    def migrate(self, vm, destination):
        """Move ``vm``'s disk to the engine ``destination``.

        :returns: :class:`VmDisk` on the destination.
        """

    @abc.abstractmethod
    def list(self):
        """:returns: list of :class:`VmDisk`, sorted by name."""

    @abc.abstractmethod
    def list_images(self):
        """:returns: list of :class:`CachedImage`, sorted by name."""

    def get_disk(self, name):
        """The :class:`VmDisk` of VM ``name``, or None.

        Callers that look for one disk use this, never :meth:`list`: the
        Nova driver asks once per domain in every resource tracker pass.
        This fallback lists; the backends answer for one VM.
        """
        return next((d for d in self.list() if d.name == name), None)

    def get_image(self, name):
        """The :class:`CachedImage` ``name``, or None (see get_disk)."""
        return next((i for i in self.list_images() if i.name == name), None)

    @abc.abstractmethod
    def add_image(self, image, location):
        """Cache ``image`` from ``location`` on this host, with no VM yet.

        Idempotent: an image already cached from ``location`` is kept.

        :returns: :class:`CachedImage`
        """

    @abc.abstractmethod
    def prefetch(self, image, progress=None):
        """Fill ``image``'s cache completely from its origin.

        :param progress: called as ``progress(done_bytes, total_bytes)``.
        :returns: :class:`CachedImage`
        """

    @abc.abstractmethod
    def reparent(self, image, location, alternates=()):
        """Fetch ``image``'s missing blocks from ``location`` from now on.

        ``location`` is a parent host's export of the same image or the
        origin; ``alternates`` are read, in order, when it fails, and the
        origin last. Running VMs and children are not interrupted.
        """

    @abc.abstractmethod
    def remove_image(self, image):
        """Drop ``image`` from the cache group; refused while VMs use it."""

    @abc.abstractmethod
    def reconcile(self):
        """Make what runs match the state file; report what differed.

        :returns: :class:`ReconcileReport`
        """

    def ensure_exports(self):
        """Bring back what serves this host's caches to other hosts.

        Called every round by the host agent; cheap when all is well.
        Engines that export nothing on their own have nothing to do.
        """
        return None

    @abc.abstractmethod
    def shutdown(self):
        """Stop the engine's processes. VM disks and state stay on disk."""


def corrupt(state, what, reason):
    """The error for a state entry that disagrees with what is derived."""
    return exception.StateError(
        path=state.path,
        reason='%s: %s; the state file was changed outside fastboot, '
               'nothing was done' % (what, reason))


class LocalEngine(Engine):
    """The skeleton both backends share: state, locks, VM entries, list.

    Every path of a VM or an image is derived from the state path and its
    validated name (:meth:`vm_paths`), never taken from the state file: a
    recorded path that disagrees is corruption, refused before anything
    is deleted or opened.
    """

    #: Subdirectories of the state path the engine keeps data in; each
    #: must be a real directory (a symlink would send VM disks, and their
    #: deletion, elsewhere).
    DATA_DIRS = ()

    def _init_state(self, state_path):
        self.state_path = os.path.abspath(state_path)
        self.lock_path = os.path.join(self.state_path, 'locks')
        for path in (self.state_path, self.lock_path) + tuple(
                os.path.join(self.state_path, d) for d in self.DATA_DIRS):
            os.makedirs(path, mode=0o750, exist_ok=True)
        for name in self.DATA_DIRS + ('locks',):
            path = os.path.join(self.state_path, name)
            if os.path.islink(path) or not os.path.isdir(path):
                raise exception.InvalidDestination(
                    destination=path,
                    reason='it must be a real directory of the state path, '
                           'not a symbolic link')
        self.state = state_mod.StateFile(self.state_path)
        # lockutils keys its in-process semaphores by name alone: make the
        # name unique per engine so two engines in one process (migrate)
        # do not share locks.
        self._digest = hashlib.sha256(
            self.state_path.encode()).hexdigest()[:8]
        self._lock_prefix = self._digest + '-'

    # -- locks ---------------------------------------------------------

    def _lock(self, kind, name):
        return lockutils.lock('%s%s-%s' % (self._lock_prefix, kind, name),
                              external=True, lock_path=self.lock_path)

    @contextlib.contextmanager
    def _vm_locks(self, *vms):
        # Sorted, so two clones in opposite directions cannot deadlock.
        with contextlib.ExitStack() as stack:
            for vm in sorted(set(vms)):
                stack.enter_context(self._lock('vm', vm))
            yield

    # -- VM entries ----------------------------------------------------

    def vm_paths(self, vm, entry):
        """``{state key: path}`` of ``vm``, derived from its name.

        :param entry: the VM's state entry (its recorded type picks the
            layout; never its paths).
        """
        return {}

    def check_vm_entry(self, vm, entry):
        """Refuse an entry whose name or paths are not what we derive."""
        try:
            names.validate(vm, 'VM')
        except exception.InvalidName as e:
            raise corrupt(self.state, 'a VM entry', e.msg)
        if not isinstance(entry, dict):
            raise corrupt(self.state, 'VM %s' % vm, 'its entry is not an '
                                                    'object')
        for key, path in self.vm_paths(vm, entry).items():
            if entry.get(key) != path:
                raise corrupt(self.state, 'VM %s' % vm,
                              'it records %s %s where %s is expected' % (
                                  key, names.shown(str(entry.get(key))),
                                  path))
        return entry

    def _vm_entry(self, vm, st=None):
        """The checked entry of ready VM ``vm``."""
        st = st or self.state.read()
        entry = st['vms'].get(vm)
        if entry is None or entry.get('status') != 'ready':
            raise exception.VmNotFound(vm=vm)
        return self.check_vm_entry(vm, entry)

    def _checked_vms(self, st, report=None):
        """``(vm, entry)`` of the state's VMs whose entries are sound.

        Corrupt entries are logged (and reported), never acted on.
        """
        for vm, entry in sorted(st['vms'].items()):
            try:
                yield vm, self.check_vm_entry(vm, entry)
            except exception.StateError as e:
                _LOG.error('%s', e.msg)
                if report is not None:
                    report.corrupt_entries.append(names.shown(vm))

    # -- the verbs' skeleton ----------------------------------------------

    @abc.abstractmethod
    def _check_not_in_use(self, vm, entry):
        """Raise VmDiskInUse when a hypervisor has the disk open."""

    @abc.abstractmethod
    def _delete_vm(self, vm, entry):
        """Delete the VM's disk (checked not in use, VM lock held)."""

    def _after_destroy(self, vm, entry):
        """What a destroy leaves to do outside the VM lock."""

    @abc.abstractmethod
    def _clone_locked(self, vm, entry, destination, image_entry):
        """Make ``destination`` a copy of closed VM ``vm``; both locked."""

    def destroy(self, vm):
        names.validate(vm, 'VM')
        with self._vm_locks(vm):
            entry = self._vm_entry(vm)
            self._check_not_in_use(vm, entry)
            self._delete_vm(vm, entry)
            with self.state.update() as st:
                st['vms'].pop(vm, None)
        self._after_destroy(vm, entry)
        _LOG.info('Destroyed VM disk %s', vm)

    def clone(self, vm, destination):
        names.validate(vm, 'VM')
        names.validate(destination, 'VM')
        if vm == destination:
            raise exception.VmExists(vm=destination)
        with self._vm_locks(vm, destination):
            st = self.state.read()
            entry = self._vm_entry(vm, st)
            self._check_not_in_use(vm, entry)
            return self._clone_locked(vm, entry, destination,
                                      st['images'][entry['image']])

    def _idle_image(self, image, st):
        """The entry of ``image``; refused unless no VM uses it."""
        entry = st['images'].get(image)
        if entry is None:
            raise exception.ImageNotFound(image=image)
        users = sorted(vm for vm, e in st['vms'].items()
                       if isinstance(e, dict) and e.get('image') == image)
        if users:
            raise exception.ImageInUse(image=image, vms=', '.join(users))
        return entry

    # -- create and roll back --------------------------------------------

    def _new_vm(self, vm, image, prepare, build, undo, locks=()):
        """Record ``vm`` on ``image``, build its disk; all or nothing.

        The caller holds the VM lock. Under the image lock (and
        ``locks``, ``(kind, name)`` pairs), ``prepare()`` makes sure the
        image is cached and returns the VM's state entry, recorded as
        ``creating`` so that remove_image and reconcile see it. Then
        ``build(entry)`` makes the disk; on success the VM is ``ready``.
        On any failure ``undo(entry)`` removes what was built (best
        effort, it must not raise) and the VM is forgotten.

        :returns: the :class:`VmDisk`.
        """
        if vm in self.state.read()['vms'] or self._vm_data_exists(vm):
            raise exception.VmExists(vm=vm)
        with contextlib.ExitStack() as stack:
            for kind, name in (('image', image),) + tuple(locks):
                stack.enter_context(self._lock(kind, name))
            entry = dict(prepare(), status='creating',
                         created_at=time.time())
            with self.state.update() as st:
                st['vms'][vm] = entry
        try:
            build(entry)
            with self.state.update() as st:
                st['vms'][vm]['status'] = 'ready'
        except BaseException:
            undo(entry)
            with self.state.update() as st:
                st['vms'].pop(vm, None)
            raise
        return self._disk(vm, self.state.read()['vms'][vm])

    def _vm_data_exists(self, vm):
        """Whether data of ``vm`` is on disk (never overwritten)."""
        return any(os.path.lexists(p) for p in
                   self.vm_paths(vm, {}).values()
                   if p.startswith(self.state_path + os.sep))

    @abc.abstractmethod
    def _disk(self, vm, entry):
        """The :class:`VmDisk` of a checked entry."""

    def list(self):
        st = self.state.read()
        return [self._disk(vm, entry)
                for vm, entry in self._checked_vms(st)
                if entry.get('status') == 'ready']

    def _entry(self, section, name, kind):
        """The state entry ``name`` of ``section``, or None if invalid."""
        try:
            names.validate(name, kind)
        except exception.InvalidName:
            return None, None
        st = self.state.read()
        return st, st[section].get(name)

    def get_disk(self, name):
        """One VM's cost, whatever the number of VMs."""
        _st, entry = self._entry('vms', name, 'VM')
        if entry is None or entry.get('status') != 'ready':
            return None
        return self._disk(name, self.check_vm_entry(name, entry))

    def get_image(self, name):
        """The :class:`CachedImage` ``name``, or None (one image's cost)."""
        st, entry = self._entry('images', name, 'image')
        if entry is None or not self._image_listed(entry):
            return None
        users = tuple(sorted(vm for vm, e in st['vms'].items()
                             if isinstance(e, dict) and
                             e.get('image') == name))
        return self._cached_image(name, entry, users, st)

    def list_images(self):
        st = self.state.read()
        users = {}
        for vm, entry in st['vms'].items():
            if isinstance(entry, dict):
                users.setdefault(entry.get('image'), []).append(vm)
        return [self._cached_image(image, entry,
                                   tuple(sorted(users.get(image, ()))), st)
                for image, entry in sorted(st['images'].items())
                if self._image_listed(entry)]

    @staticmethod
    def _image_listed(entry):
        return True

    @abc.abstractmethod
    def _cached_image(self, image, entry, users, st):
        """The :class:`CachedImage` of an image's state entry."""
