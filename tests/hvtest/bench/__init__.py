"""The benchmark (make bench): the collection against the usual win_powershell playbook, on the real PowerShell."""
