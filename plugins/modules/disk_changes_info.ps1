#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvBatch
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvCheckpoint
#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint
#AnsibleRequires -PowerShell ..module_utils._HvDiskChanges

$spec = @{
    options = @{
        checkpoint = @{ type = 'str'; required = $true }
        base = @{ type = 'str' }
        chunk_bytes = @{ type = 'int'; default = 0 }
        max_ranges_inline = @{ type = 'int'; default = 1000 }
        ranges_dir = @{ type = 'path' }
        vms = Get-HvVmsSpec -Option @{
            base = @{ type = 'str' }
            ranges_dir = @{ type = 'path' }
        }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec)))

Function Get-DiskChange {
    <#
    .SYNOPSIS
    Returns one disk of the checkpoint as the result lists it: its changed ranges since the base, or why they cannot be known (reason).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Disk,

        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $RctId,

        [Parameter(Mandatory)]
        [hashtable]
        $Params
    )

    $entry = @{
        path = $Disk.path
        device = $Disk.device
        rct_id = $RctId
        size = $null
        changed_bytes = $null
        range_count = 0
        ranges = @()
        ranges_file = $null
    }
    if (-not $RctId) {
        return @{ disk = $entry; ranges = @(); reason = "disk '$($Disk.path)' is not in '$($Params.base)' (added since, or without change tracking)" }
    }
    $entry.size = Get-HvVirtualDiskSize -Path $Disk.path
    try {
        $ranges = @(Get-HvVirtualDiskChange -Path $Disk.path -LimitId $RctId -Size $entry.size -ChunkBytes $Params.chunk_bytes)
    }
    catch {
        return @{ disk = $entry; ranges = @(); reason = "the changes of '$($Disk.path)' since '$($Params.base)' cannot be read: $($_.Exception.Message)" }
    }
    $changed = [long]0
    foreach ($range in $ranges) {
        $changed += [long]$range[1]
    }
    $entry.changed_bytes = $changed
    $entry.range_count = $ranges.Count
    @{ disk = $entry; ranges = $ranges; reason = $null }
}

Function Save-RangeFile {
    <#
    .SYNOPSIS
    Writes a disk's ranges to a file on the host, where a block-level copy tool reads them; returns its path.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [Parameter(Mandatory)]
        [hashtable]
        $Content
    )

    if (-not (Test-Path -LiteralPath $Folder)) {
        $null = New-Item -Path $Folder -ItemType Directory -Force
    }
    $file = Join-Path -Path $Folder -ChildPath $Name
    [System.IO.File]::WriteAllText($file, [Ansible.Basic.AnsibleModule]::ToJson($Content))
    $file
}

Function Invoke-DiskChangesStep {
    <#
    .SYNOPSIS
    Returns the VM's result of the task's work for one VM (see _HvBatch for how steps run).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    $identity = $Result.vm
    $label = $Params.checkpoint
    $baseName = $Params.base
    $rangesDir = if ($Params.ranges_dir) { $Params.ranges_dir } else { Join-Path -Path $env:ProgramData -ChildPath 'hyperv.backup\changes' }
    $Result.checkpoint = $label
    $Result.base = $baseName
    $Result.disks = @()
    $Result.changed_bytes = 0
    $Result.full_needed = $false
    $Result.full_reasons = @()
    if ($Params.chunk_bytes -lt 0 -or $Params.max_ranges_inline -lt 0) {
        throw (New-HvStepFailure -Message 'chunk_bytes and max_ranges_inline must be 0 or more.')
    }
    if (-not $baseName) {
        throw (New-HvStepFailure -Message ("Changed blocks of VM '$($identity.name)' ($($identity.id)) need a base reference point: " +
                "set base for the task or for the VM in vms."))
    }
    $action = "Changed blocks of VM '$($identity.name)' since '$baseName'"
    $checkpoint = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine) -Label $label
    if ($null -eq $checkpoint -and -not $AnsibleModule.CheckMode) {
        throw (New-HvStepFailure -Message ("$action need the recovery checkpoint '$label', which the VM does not have; " +
                "create it with hyperv.backup.recovery_checkpoint first."))
    }
    $catalog = Read-HvCatalog -Path (Resolve-HvCatalogPath -Path $Params.catalog_path)
    $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $baseName | Select-Object -First 1
    $basePoint = $null
    if ($null -ne $entry) {
        $basePoint = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $entry.instance_id
    }
    if ($null -eq $basePoint) {
        $Result.full_needed = $true
        $Result.full_reasons = @("the base reference point '$baseName' no longer exists")
        return $Result
    }
    if ($null -eq $checkpoint) {
        # Check mode, and the checkpoint task before this one made nothing: the base is checked,
        # the changes are not known until there is a checkpoint to read them against.
        $Result.changed_bytes = $null
        return $Result
    }

    # The base's RCT ids by disk: ids of the same disk differ in their owner part, not their device part.
    $baseIds = @($basePoint.VirtualDiskIdentifiers)
    $rctIds = @($basePoint.ResilientChangeTrackingIdentifiers)
    $rctByDevice = @{}
    for ($index = 0; $index -lt [Math]::Min($baseIds.Count, $rctIds.Count); $index++) {
        $rctByDevice[(Get-HvDiskDevicePart -DiskId $baseIds[$index])] = $rctIds[$index]
    }
    $reasons = [System.Collections.Generic.List[string]]@()
    $disks = [System.Collections.Generic.List[object]]@()
    $seen = [System.Collections.Generic.List[string]]@()
    foreach ($disk in @(Get-HvCheckpointDiskFile -Checkpoint $checkpoint)) {
        $seen.Add($disk.device)
        $read = Get-DiskChange -Disk $disk -RctId $rctByDevice[$disk.device] -Params $Params
        if ($read.reason) {
            $reasons.Add($read.reason)
        }
        elseif ($read.ranges.Count -gt $Params.max_ranges_inline -and -not $AnsibleModule.CheckMode) {
            $content = @{ path = $disk.path; base = $baseName; ranges = $read.ranges }
            $read.disk.ranges_file = Save-RangeFile -Folder $rangesDir -Name "$($identity.id)-$label-$($disks.Count).json" -Content $content
        }
        else {
            $read.disk.ranges = $read.ranges
        }
        $Result.changed_bytes += [long]$read.disk.changed_bytes
        $disks.Add($read.disk)
    }
    foreach ($device in $rctByDevice.Keys) {
        if (-not $seen.Contains($device)) {
            $reasons.Add("a disk of '$baseName' is no longer attached to the VM")
        }
    }
    $Result.disks = @($disks)
    $Result.full_reasons = @($reasons)
    $Result.full_needed = $reasons.Count -gt 0
    $Result
}

Invoke-HvVmBatch -Module $module -Step (Get-Command -Name Invoke-DiskChangesStep) -Subject { 'Changed blocks' }
