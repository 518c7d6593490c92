"""The engine interface both backends implement.

The verbs are VirtMan's (paper, Table 2) plus ``prefetch`` and the cache
administration calls. An engine owns one host's cache group: any number of
images (shared read-only origins, each cached once) and any number of VMs,
each with a private persistent copy-on-write disk over one image's cache.
"""

import abc
import dataclasses


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

    @property
    def clean(self):
        return not any(v for k, v in dataclasses.asdict(self).items()
                       if k != 'daemon_restarted')


class Engine(abc.ABC):
    """A host's block engine."""

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
