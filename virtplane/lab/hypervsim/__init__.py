"""Simulated Hyper-V host."""
