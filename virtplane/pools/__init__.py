"""Desktop pools: ``size`` identical desktops cloned from a golden image, each an ordinary VirtualMachine in plans
and drift, with the pool's own rules on top (docs/desktops.md):

- naming.py: member names from the pool's ``naming`` pattern, and numbers read back from names;
- spec.py: the pool's own settings, validated once for all its desktops;
- resource.py: ``virtplane.DesktopPool``, a ComponentResource whose children are the desktops;
- planning.py: what the generic plan becomes for a pool (recompose, shrink, desktops in use, batches);
- placement.py: spread or pack over capable hosts, and the whole pool's capacity checked at once;
- listing.py: ``virtplane desktops`` (host, power, address, vGPU, in use).
"""
