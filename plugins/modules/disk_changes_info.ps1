#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvVirtualMachine
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvBatch
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCatalog
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCheckpoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvReferencePoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvDiskChanges

$spec = @{
    options = @{
        checkpoint = @{ type = 'str'; required = $true }
        base = @{ type = 'str' }
        chunk_bytes = @{ type = 'int'; default = 0 }
        max_ranges_inline = @{ type = 'int'; default = 1000 }
        ranges_dir = @{ type = 'path' }
        vms = @{
            type = 'list'
            elements = 'dict'
            options = @{
                vm = @{ type = 'str' }
                vm_id = @{ type = 'str' }
                base = @{ type = 'str' }
                ranges_dir = @{ type = 'path' }
            }
            mutually_exclusive = @(, @('vm', 'vm_id'))
            required_one_of = @(, @('vm', 'vm_id'))
        }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec)))

Function Invoke-DiskChangesStep {
    <#
    .SYNOPSIS
    Does the task's work for one VM; ends with the module's ExitJson or FailJson.

    .DESCRIPTION
    Run once against the module itself, or once per VM of vms against a
    stand-in module; see HvBatch.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $module
    )

    $label = $module.Params.checkpoint
    $baseName = $module.Params.base
    $catalogPath = Resolve-HvCatalogPath -Path $module.Params.catalog_path
    $rangesDir = if ($module.Params.ranges_dir) { $module.Params.ranges_dir } else { Join-Path -Path $env:ProgramData -ChildPath 'hyperv.backup\changes' }

    $module.Result.changed = $false
    $module.Result.vm = @{ name = $module.Params.vm; id = $module.Params.vm_id }
    $module.Result.checkpoint = $label
    $module.Result.base = $baseName
    $module.Result.disks = @()
    $module.Result.changed_bytes = 0
    $module.Result.full_needed = $false
    $module.Result.full_reasons = @()

    if ($module.Params.chunk_bytes -lt 0 -or $module.Params.max_ranges_inline -lt 0) {
        $module.FailJson('chunk_bytes and max_ranges_inline must be 0 or more.')
    }
    if (-not $baseName) {
        $module.FailJson("Changed blocks of VM '$($module.Params.vm)$($module.Params.vm_id)' need a base reference point: set base for the task or for the VM in vms.")
    }

    try {
        $vm = Get-HvStepVirtualMachine -Module $module
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine $vm
        $module.Result.vm = $identity
    }
    catch {
        $module.FailJson("Changed blocks of VM '$($module.Result.vm.name)$($module.Result.vm.id)': $($_.Exception.Message)", $_)
    }
    $action = "Changed blocks of VM '$($identity.name)' since '$baseName'"

    try {
        $checkpoint = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $vm) -Label $label
        if ($null -eq $checkpoint) {
            $module.FailJson("$action need the recovery checkpoint '$label', which the VM does not have; create it with hyperv.backup.recovery_checkpoint first.")
        }
        $catalog = Read-HvCatalog -Path $catalogPath
        $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $baseName | Select-Object -First 1
        $basePoint = $null
        if ($null -ne $entry) {
            $basePoint = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $vm) -InstanceId $entry.instance_id
        }
        if ($null -eq $basePoint) {
            $module.Result.full_needed = $true
            $module.Result.full_reasons = @("the base reference point '$baseName' no longer exists")
            $module.ExitJson()
        }

        $baseIds = @($basePoint.VirtualDiskIdentifiers)
        $rctIds = @($basePoint.ResilientChangeTrackingIdentifiers)
        $rctByDevice = @{}
        for ($index = 0; $index -lt [Math]::Min($baseIds.Count, $rctIds.Count); $index++) {
            $rctByDevice[(Get-HvDiskDevicePart -DiskId $baseIds[$index])] = $rctIds[$index]
        }
        $reasons = [System.Collections.Generic.List[string]]@()
        $disks = [System.Collections.Generic.List[object]]@()
        $total = [long]0
        $seen = @()
        foreach ($disk in @(Get-HvCheckpointDiskFile -Checkpoint $checkpoint)) {
            $seen += $disk.device
            $result = @{ path = $disk.path; device = $disk.device; rct_id = $rctByDevice[$disk.device]; size = $null; changed_bytes = $null; range_count = 0; ranges = @(); ranges_file = $null }
            if (-not $result.rct_id) {
                $reasons.Add("disk '$($disk.path)' is not in '$baseName' (added since, or without change tracking)")
                $disks.Add($result)
                continue
            }
            $result.size = Get-HvVirtualDiskSize -Path $disk.path
            try {
                $ranges = @(Get-HvVirtualDiskChange -Path $disk.path -LimitId $result.rct_id -Size $result.size -ChunkBytes $module.Params.chunk_bytes)
            }
            catch {
                $reasons.Add("the changes of '$($disk.path)' since '$baseName' cannot be read: $($_.Exception.Message)")
                $disks.Add($result)
                continue
            }
            $changed = [long]0
            foreach ($range in $ranges) {
                $changed += [long]$range[1]
            }
            $result.changed_bytes = $changed
            $result.range_count = $ranges.Count
            $total += $changed
            if ($ranges.Count -gt $module.Params.max_ranges_inline -and -not $module.CheckMode) {
                # Large lists go to a file on the host, where a block-level copy tool reads them.
                if (-not (Test-Path -LiteralPath $rangesDir)) {
                    $null = New-Item -Path $rangesDir -ItemType Directory -Force
                }
                $file = Join-Path -Path $rangesDir -ChildPath "$($identity.id)-$label-$($disks.Count).json"
                [System.IO.File]::WriteAllText($file, [Ansible.Basic.AnsibleModule]::ToJson(@{ path = $disk.path; base = $baseName; ranges = $ranges }))
                $result.ranges_file = $file
            }
            else {
                $result.ranges = $ranges
            }
            $disks.Add($result)
        }
        foreach ($device in $rctByDevice.Keys) {
            if ($seen -notcontains $device) {
                $reasons.Add("a disk of '$baseName' is no longer attached to the VM")
            }
        }
        $module.Result.disks = @($disks)
        $module.Result.changed_bytes = $total
        $module.Result.full_reasons = @($reasons)
        $module.Result.full_needed = $reasons.Count -gt 0
    }
    catch {
        if (Test-HvStepExit -ErrorRecord $_) {
            throw
        }
        $module.FailJson("$action failed: $($_.Exception.Message)", $_)
    }
    $module.ExitJson()
}

Invoke-HvVmBatch -Module $module -Step ${function:Invoke-DiskChangesStep}
