"""The Hyper-V provider: one Hyper-V host over WinRM/PSRP (pypsrp), structured cmdlets only."""
