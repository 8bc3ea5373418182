"""The Proxmox VE driver, over proxmoxer's HTTPS backend."""
