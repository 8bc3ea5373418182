"""Hypervisor drivers. ``base`` holds the contract; each subpackage implements it for one hypervisor."""
