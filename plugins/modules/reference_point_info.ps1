#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint

$spec = @{
    options = @{
        vm = @{ type = 'list'; elements = 'str'; default = @() }
        vm_id = @{ type = 'list'; elements = 'str'; default = @() }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @(Get-HvCatalogSpec))

$catalogPath = Resolve-HvCatalogPath -Path $module.Params.catalog_path
$module.Result.changed = $false
$module.Result.vms = @()
$module.Result.reference_points = @()
$module.Result.stale_entries = @()
$module.Result.catalog_path = $catalogPath

try {
    $all = @(Get-HvVirtualMachineList)
    $selected = [System.Collections.Generic.List[object]]@()
    foreach ($vmName in $module.Params.vm) {
        $selected.Add((Select-HvVirtualMachine -VirtualMachine $all -Name $vmName))
    }
    foreach ($vmId in $module.Params.vm_id) {
        $selected.Add((Select-HvVirtualMachine -VirtualMachine $all -Id $vmId))
    }
    if ($selected.Count -eq 0) {
        $selected.AddRange([object[]]$all)
    }
    # A VM named twice (by name and by id) is listed once.
    $vms = @($selected | Sort-Object -Property Name -Unique)
    $catalog = Read-HvCatalog -Path $catalogPath
}
catch {
    $module.FailJson("Listing reference points failed: $($_.Exception.Message)", $_)
}

$points = [System.Collections.Generic.List[object]]@()
$stale = [System.Collections.Generic.List[object]]@()
$identities = [System.Collections.Generic.List[object]]@()
foreach ($vm in $vms) {
    $identity = Get-HvVirtualMachineIdentity -VirtualMachine $vm
    $identities.Add($identity)
    try {
        $listing = Get-HvReferencePointListing -VirtualMachine $vm -VmIdentity $identity -Catalog $catalog
    }
    catch {
        $module.FailJson("Listing reference points of VM '$($identity.name)' ($($identity.id)) failed: $($_.Exception.Message)", $_)
    }
    $points.AddRange([object[]]$listing.reference_points)
    $stale.AddRange([object[]]$listing.stale_entries)
}

$module.Result.vms = @($identities)
$module.Result.reference_points = @($points)
$module.Result.stale_entries = @($stale)
$module.ExitJson()
