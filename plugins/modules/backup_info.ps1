#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvBackupSet
#AnsibleRequires -PowerShell ..module_utils._HvDestination

$spec = @{
    options = @{
        path = @{ type = 'str'; required = $true }
        vm = @{ type = 'str' }
        check_files = @{ type = 'bool'; default = $true }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$module.Result.changed = $false

$path = $module.Params.path
if (-not (Test-HvFullPath -Path $path)) {
    $module.FailJson("path '$path' is not a full path: give a drive and its root (E:\Backups) or a share (\\server\share\Backups).")
}
if (-not (Test-Path -LiteralPath $path -PathType Container)) {
    $module.FailJson("Backup folder '$path' does not exist, or this account cannot see it from the host (a share reached over WinRM may need " +
        "CredSSP or Kerberos delegation: see docs/awx.md, the second hop).")
}
try {
    $set = Get-HvBackupSet -Path $path -Vm ([string]$module.Params.vm) -CheckFiles $module.Params.check_files
}
catch {
    $module.FailJson("Reading the backups under '$path' failed: $($_.Exception.Message)", $_)
}
$module.Result.path = $path
$module.Result.restore_points = @($set.restore_points)
$module.Result.vms = @($set.vms)
$module.Result.incomplete = @($set.incomplete)
$module.Result.complete = @($set.restore_points | Where-Object { $_.complete }).Count
$module.Result.broken = @($set.restore_points | Where-Object { -not $_.complete }).Count
$module.ExitJson()
