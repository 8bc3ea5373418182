"""KVM/QEMU hosts (and libvirt's test driver) through libvirt."""
