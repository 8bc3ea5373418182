"""The embedded lab: simulated hypervisor endpoints on loopback for the quick start and the tests."""
