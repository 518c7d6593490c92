"""The host side of hierarchical attaching.

A host registers with the coordinator, reports the caches it holds, asks
which parent hosts to read from, heartbeats, and re-parents when a parent
fails. The data path never depends on the coordinator: a cache always has
the origin as its last source, so a host that cannot reach the coordinator
keeps working from the origin.
"""
