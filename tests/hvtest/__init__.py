"""Test tooling of hyperv.backup: static PowerShell checks, the Hyper-V simulator, its endpoint.

Never imported by the collection's plugins.
"""
