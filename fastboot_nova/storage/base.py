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


@dataclasses.dataclass
class ReconcileReport:
    """What ``reconcile`` found and did."""

    restored_images: list = dataclasses.field(default_factory=list)
    restored_exports: list = dataclasses.field(default_factory=list)
    removed_orphan_nodes: list = dataclasses.field(default_factory=list)
    removed_temp_files: list = dataclasses.field(default_factory=list)
    orphan_disks: list = dataclasses.field(default_factory=list)
    missing_disks: list = dataclasses.field(default_factory=list)
    daemon_restarted: bool = False

    @property
    def clean(self):
        return not (self.restored_images or self.removed_orphan_nodes or
                    self.orphan_disks or self.missing_disks)


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
    def prefetch(self, image, progress=None):
        """Fill ``image``'s cache completely from its origin.

        :param progress: called as ``progress(done_bytes, total_bytes)``.
        :returns: :class:`CachedImage`
        """

    @abc.abstractmethod
    def remove_image(self, image):
        """Drop ``image`` from the cache group; refused while VMs use it."""

    @abc.abstractmethod
    def reconcile(self):
        """Make what runs match the state file; report what differed.

        :returns: :class:`ReconcileReport`
        """

    @abc.abstractmethod
    def shutdown(self):
        """Stop the engine's processes. VM disks and state stay on disk."""
