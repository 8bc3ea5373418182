"""The vSphere (vCenter / ESXi) driver, over pyvmomi."""
