#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvDestination

$spec = @{
    options = @{
        path = @{ type = 'str'; required = $true }
        # GiB, not bytes: Ansible.Basic's int is 32 bits, and any backup is more than 2 GiB.
        required_gib = @{ type = 'float'; default = 0 }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$module.Result.changed = $false
if ($module.Params.required_gib -lt 0) {
    $module.FailJson("required_gib must be 0 or more, got $($module.Params.required_gib).")
}
try {
    $required = [long][Math]::Ceiling($module.Params.required_gib * 1073741824)
    $state = Get-HvDestinationState -Path $module.Params.path -RequiredBytes $required
}
catch {
    $module.FailJson("Checking backup destination '$($module.Params.path)' failed: $($_.Exception.Message)", $_)
}
$module.Result.path = $state.path
$module.Result.kind = $state.kind
$module.Result.exists = $state.exists
$module.Result.writable = $state.writable
$module.Result.free_bytes = $state.free_bytes
$module.Result.total_bytes = $state.total_bytes
$module.Result.required_bytes = $state.required_bytes
$module.Result.usable = $state.usable
$module.Result.problem = $state.problem
$module.ExitJson()
