#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvRestore
#AnsibleRequires -PowerShell ..module_utils._HvDestination
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance

$spec = @{
    options = @{
        name = @{ type = 'str'; required = $true }
        folder = @{ type = 'str'; required = $true }
        state = @{ type = 'str'; default = 'present'; choices = @('present', 'absent') }
        path = @{ type = 'str' }
        vm = @{ type = 'str' }
        restore_point = @{ type = 'str'; default = 'latest' }
        switch_map = @{ type = 'dict'; default = @{} }
        connect_network = @{ type = 'bool'; default = $true }
        start = @{ type = 'bool'; default = $false }
        heartbeat_timeout = @{ type = 'int'; default = 300 }
        step_timeout = @{ type = 'int'; default = 3600 }
        replace = @{ type = 'bool'; default = $false }
    }
    required_if = @(, @('state', 'present', @('path', 'vm')))
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$module.Result.changed = $false

Function Get-NamedVirtualMachine {
    <#
    .SYNOPSIS
    Returns the VMs of the host with a display name (compared as Hyper-V Manager does: ordinal, case-insensitive).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [string]
        $Name
    )

    @(Get-HvVirtualMachineList) | Where-Object { [string]::Equals($_.ElementName, $Name, [StringComparison]::OrdinalIgnoreCase) }
}

Function ConvertTo-PlanResult {
    <#
    .SYNOPSIS
    Returns the restore point and disks of a plan as the module reports them.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Plan
    )

    $point = $Plan.restore_point
    @{
        source = @{
            vm = @{ id = $point.vm.id; name = $point.vm.name }
            restore_point = $point.label
            time = $point.time
            mode = $point.mode
            chain = @($point.chain)
            path = $point.path
        }
        disks = @(foreach ($drive in $Plan.drives) {
                @{
                    name = $drive.name
                    from = @($drive.files | ForEach-Object { $_.path })
                    merges = $drive.files.Count - 1
                }
            })
        configuration = $Plan.configuration.path
    }
}

Function Save-Progress {
    <#
    .SYNOPSIS
    Records in the folder's marker what a restore has made so far (status restoring) or made in all (done).

    .DESCRIPTION
    Written before the first file and after each thing made, so that a restore that dies half-way
    (a dropped connection, a host restart) is found again: state=absent removes what it recorded.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Progress,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [System.Collections.Generic.List[string]]
        $Written
    )

    $folder = $Progress.folder
    $marker = @{}
    foreach ($key in @('status', 'vm', 'planned', 'source', 'replaced')) {
        $marker[$key] = $Progress[$key]
    }
    $marker.files = @($Written | ForEach-Object { ConvertTo-HvRelativePath -Folder $folder -Path $_ })
    $marker.restored = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
    Save-HvRestoreMarker -Folder $folder -Marker $marker
}

Function Invoke-Restore {
    <#
    .SYNOPSIS
    Restores a plan into a folder as a VM of the given name; returns the VM and what was done, or throws with what was left.

    .DESCRIPTION
    Every file written is recorded as it is written, and the planned system as soon as it
    exists, so that a failure at any step removes them: the folder is left as it was, the host
    has no half-registered VM, and the backup files are only ever read. What cannot be removed
    stays recorded in the marker, for state=absent to finish.

    A VM to replace is removed last, once the restored VM is registered and that VM has been
    checked again (it may have been started or checkpointed during a long restore). Until
    DestroySystem is called, a failure removes the restore and leaves that VM in place; after, the
    restore is removed only when Hyper-V said no and the VM is still there - when the outcome is
    not known (a timeout, a job that vanished), the restored VM is kept: it may be the only copy.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Plan,

        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        # The VM to replace (system) and what replacing it removes and keeps (report), or nothing.
        [hashtable]
        $Replace
    )

    $folder = $Params.folder
    $timeout = $Params.step_timeout
    $written = [System.Collections.Generic.List[string]]::new()
    $progress = @{ folder = $folder; status = 'restoring'; vm = @{ id = $null; name = $Params.name }; planned = $null
        source = (ConvertTo-PlanResult -Plan $Plan).source
    }
    $createdFolders = @(Get-HvMissingFolder -Folder $folder)
    $planned = $null
    $pointsRemoved = [System.Collections.Generic.List[string]]::new()
    $destroying = $false
    $step = 'copying the disks'
    try {
        $null = New-Item -Path $folder -ItemType Directory -Force
        Save-Progress -Progress $progress -Written $written
        $restored = [ordered]@{}
        foreach ($drive in $Plan.drives) {
            $restored[$drive.name] = Copy-HvRestoreDrive -Drive $drive -Folder $folder -TimeoutSeconds $timeout -Written $written
            Save-Progress -Progress $progress -Written $written
        }
        $step = 'importing the configuration'
        $configFolder = Join-Path -Path $folder -ChildPath 'Virtual Machines'
        $null = New-Item -Path $configFolder -ItemType Directory -Force
        $config = $null
        foreach ($file in $Plan.configuration.files) {
            $copy = Join-Path -Path $configFolder -ChildPath (@(Get-HvPathPart -Path $file)[-1])
            $written.Add($copy)
            Copy-HvWritableFile -Path $file -Destination $copy
            if ($null -eq $config) {
                $config = $copy
            }
        }
        Save-Progress -Progress $progress -Written $written
        $planned = Import-HvPlannedSystem -ConfigurationFile $config -SnapshotFolder $folder -TimeoutSeconds $timeout
        $progress.planned = ([guid]$planned.Name).ToString()
        Save-Progress -Progress $progress -Written $written
        $step = 'setting up the imported VM'
        $setting = Get-HvVirtualMachineSetting -VirtualMachine $planned
        Set-HvPlannedSystemName -Setting $setting -Name $Params.name -Folder $folder -TimeoutSeconds $timeout
        Set-HvPlannedDiskPath -Setting $setting -RestoredPath $restored -TimeoutSeconds $timeout
        $network = @(Set-HvPlannedNetwork -Setting $setting -SwitchMap $Params.switch_map -Connect $Params.connect_network -TimeoutSeconds $timeout)
        $step = 'validating the imported VM'
        $warnings = @(Test-HvPlannedSystem -Planned $planned -TimeoutSeconds $timeout)
        $step = 'registering the imported VM'
        $vm = Complete-HvPlannedSystem -Planned $planned -TimeoutSeconds $timeout
        $progress.vm.id = ([guid]$vm.Name).ToString()
        if ($null -ne $Replace) {
            $step = "replacing VM $(Format-HvVirtualMachineList -VirtualMachine @($Replace.system))"
            $original = Get-ReplaceTarget -Replace $Replace
            $report = Get-HvReplacedSystem -VirtualMachine $original
            $progress.replaced = $report
            Save-Progress -Progress $progress -Written $written
            Remove-HvReplacedReferencePoint -VirtualMachine $original -Removed $pointsRemoved -TimeoutSeconds $timeout
            $report.reference_points = @($pointsRemoved)
            Save-Progress -Progress $progress -Written $written
            $destroying = $true
            Remove-HvSystem -System $original -TimeoutSeconds $timeout
        }
        $progress.status = 'done'
        $step = 'recording the restore'
        Save-Progress -Progress $progress -Written $written
    }
    catch {
        $reason = $_.Exception.Message
        if ($destroying -and -not (Test-Refused -ErrorRecord $_ -System $Replace.system)) {
            # The original may be gone (or go yet: a removal that timed out can still finish), so the
            # restored VM may be the only copy: it stays, recorded as not finished.
            $failure = [System.InvalidOperationException]::new("failed while ${step}: $reason Whether that VM was removed is not known, so the " +
                "restored VM '$($Params.name)' ($($progress.vm.id)) is kept, registered, and recorded in '$folder'. Run the task again: once " +
                'that VM is gone, it records the restore as done; while it is there, the two VMs share the name.')
            $failure.Data['HvLeft'] = $true
            throw $failure
        }
        $progress.status = 'restoring'
        $progress.replaced = $null
        $left = @(Undo-Restore -Progress $progress -Written $written -CreatedFolder $createdFolders)
        $outcome = Get-ReplaceOutcome -Replace $Replace -Removed $pointsRemoved
        if ($left.Count -eq 0) {
            $failure = [System.InvalidOperationException]::new("failed while ${step}: $reason Nothing was left: the files written and the " +
                "imported VM were removed.$outcome")
            # Reference points removed from the VM left in place are a change.
            $failure.Data['HvChanged'] = $pointsRemoved.Count -gt 0
            throw $failure
        }
        $failure = [System.InvalidOperationException]::new("failed while ${step}: $reason Could not remove $($left -join '; '). The restore " +
            "is recorded in '$folder': run vm_restore with state=absent, name '$($Params.name)' and this folder to remove what is left.$outcome")
        $failure.Data['HvLeft'] = $true
        throw $failure
    }
    @{
        vm = @{ id = $progress.vm.id; name = $Params.name; state = 'off' }
        disks = @($restored.Values)
        network = $network
        validation = $warnings
        replaced = $progress['replaced']
    }
}

Function Find-VirtualMachine {
    <#
    .SYNOPSIS
    Returns the VM of the host with an id, or nothing.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [string]
        $Id
    )

    $wanted = ([guid]$Id).ToString()
    @(Get-HvVirtualMachineList) | Where-Object { ([guid]$_.Name).ToString() -eq $wanted }
}

Function Get-ReplaceTarget {
    <#
    .SYNOPSIS
    Returns the VM to replace as it is now, throwing when it can no longer be replaced (gone, started, or checkpointed during the restore).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Replace
    )

    $id = ([guid]$Replace.system.Name).ToString()
    $now = @(Find-VirtualMachine -Id $id)
    if ($now.Count -eq 0) {
        throw "VM '$($Replace.system.ElementName)' ($id) is no longer on the host"
    }
    $problem = Get-HvReplaceProblem -VirtualMachine $now[0] -BackedUpId $id
    if ($problem) {
        throw "$problem (it changed during the restore)."
    }
    $now[0]
}

Function Test-Refused {
    <#
    .SYNOPSIS
    Returns whether a failed DestroySystem certainly did not remove a VM: Hyper-V refused it or its job failed, and the VM is still there.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord,

        [Parameter(Mandatory)]
        [object]
        $System
    )

    $data = $ErrorRecord.Exception.Data
    if (-not ($data['HvReason'] -or $data['HvJobFailed'])) {
        return $false
    }
    try {
        @(Find-VirtualMachine -Id $System.Name).Count -gt 0
    }
    catch {
        $false
    }
}

Function Get-ReplaceOutcome {
    <#
    .SYNOPSIS
    Returns what a failed restore says of the VM it was to replace, which stays: as it was, or without the reference points removed.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [hashtable]
        $Replace,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [System.Collections.Generic.List[string]]
        $Removed
    )

    if ($null -eq $Replace) {
        return ''
    }
    $which = Format-HvVirtualMachineList -VirtualMachine @($Replace.system)
    if ($Removed.Count -eq 0) {
        return " VM $which was not replaced and is as it was."
    }
    " VM $which was not replaced, but its reference points $($Removed -join ', ') were removed: its next backup cannot be a differential one."
}

Function Undo-Restore {
    <#
    .SYNOPSIS
    Removes what a failed restore made (its planned system or VM, the files written, the folders left empty); returns what could not be removed.

    .DESCRIPTION
    The VM is looked for by the planned system's id too: a registration that timed out may have
    happened after all. The marker goes last, and only when nothing else is left.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Progress,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [System.Collections.Generic.List[string]]
        $Written,

        # The target folder and the folders above it that the restore made.
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $CreatedFolder
    )

    $left = [System.Collections.Generic.List[string]]::new()
    try {
        $systems = @(Find-HvRestoredSystem -Marker $Progress)
    }
    catch {
        $systems = @()
        $left.Add("the imported VM, which could not be looked for ($($_.Exception.Message))")
    }
    foreach ($system in $systems) {
        try {
            Remove-HvSystem -System $system -TimeoutSeconds 300
        }
        catch {
            $left.Add("the imported VM $(Format-HvVirtualMachineList -VirtualMachine @($system)) ($($_.Exception.Message))")
        }
    }
    $folder = $Progress.folder
    $folders = @(Get-HvRestoreFolderPath -Folder $folder) + $CreatedFolder
    foreach ($problem in @(Remove-HvRestoreFile -File @($Written) -Folder @())) {
        $left.Add($problem)
    }
    if ($left.Count -gt 0) {
        Save-Progress -Progress $Progress -Written $Written
        return $left
    }
    Remove-Item -LiteralPath (Get-HvRestoreMarkerPath -Folder $folder) -Force -ErrorAction SilentlyContinue
    Remove-HvRestoreFile -File @() -Folder $folders
}

Function Start-Restored {
    <#
    .SYNOPSIS
    Starts a restored VM and waits for its heartbeat; returns the heartbeat seen, throwing when the start fails.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $Params
    )

    Set-HvVirtualMachinePower -VirtualMachine $VirtualMachine -State 2 -TimeoutSeconds $Params.step_timeout
    Wait-HvHeartbeat -VirtualMachine $VirtualMachine -TimeoutSeconds $Params.heartbeat_timeout
}

Function Remove-Restored {
    <#
    .SYNOPSIS
    Removes a restore recorded in a folder - its VM or planned system, then its files, the marker last - throwing with what is left.

    .DESCRIPTION
    Only what the marker records, and only inside the folder: a VM whose disks are not all in the
    folder is not this restore's and is refused before anything is removed.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Marker,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $System,

        [Parameter(Mandatory)]
        [hashtable]
        $Params
    )

    $folder = $Params.folder
    $files = @(Get-HvRestoreFile -Folder $folder -Marker $Marker)
    foreach ($found in $System) {
        $outside = @(Get-HvSystemDiskPath -System $found | Where-Object { -not (Test-HvInsideFolder -Folder $folder -Path $_) })
        if ($outside.Count -gt 0) {
            $which = Format-HvVirtualMachineList -VirtualMachine @($found)
            throw "VM $which has disks outside '$folder' ($($outside -join ', ')), so it is not the restore recorded there; nothing was removed"
        }
    }
    $removed = [System.Collections.Generic.List[string]]::new()
    foreach ($found in $System) {
        # A running or paused VM is turned off first; DestroySystem takes one that is off or saved.
        if ($found.CimSystemProperties.ClassName -eq 'Msvm_ComputerSystem' -and [int]$found.EnabledState -in @(2, 9)) {
            Set-HvVirtualMachinePower -VirtualMachine $found -State 3 -TimeoutSeconds $Params.step_timeout
        }
        Remove-HvSystem -System $found -TimeoutSeconds $Params.step_timeout
        $removed.Add((Format-HvVirtualMachineList -VirtualMachine @($found)))
    }
    $folders = @(Get-HvRestoreFolderPath -Folder $folder) + @($folder)
    $left = @(Remove-HvRestoreFile -File $files -Folder @())
    if ($left.Count -gt 0) {
        $gone = if ($removed.Count -gt 0) { "VM $($removed -join ', ') was removed; " } else { '' }
        throw "$($gone)could not remove $($left -join '; ')"
    }
    Remove-Item -LiteralPath (Get-HvRestoreMarkerPath -Folder $folder) -Force
    $null = Remove-HvRestoreFile -File @() -Folder $folders
}

Function Get-MarkerMismatch {
    <#
    .SYNOPSIS
    Returns how a finished restore in the folder differs from the one asked for (another VM's backup, another restore point), or nothing.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Marker,

        [Parameter(Mandatory)]
        [hashtable]
        $Params
    )

    $source = $Marker.source
    $guid = [guid]::Empty
    $byId = [guid]::TryParse($Params.vm.Trim('{', '}'), [ref]$guid) -and $guid.ToString() -eq [string]$source.vm.id
    $sameVm = $byId -or [string]::Equals([string]$source.vm.name, $Params.vm, [StringComparison]::Ordinal)
    if (-not $sameVm) {
        return "it holds a restore of VM '$($source.vm.name)' ($($source.vm.id)), not of '$($Params.vm)'"
    }
    if ($Params.restore_point -ne 'latest' -and -not [string]::Equals([string]$source.restore_point, $Params.restore_point, [StringComparison]::Ordinal)) {
        return "it holds the restore of backup '$($source.restore_point)', not of '$($Params.restore_point)'"
    }
}

# ---------------------------------------------------------------------------------------------- main

$params = @{}
foreach ($key in $module.Params.Keys) {
    $params[$key] = $module.Params[$key]
}
if ($null -eq $params.switch_map) {
    $params.switch_map = @{}
}
$folder = $params.folder
if (-not (Test-HvFullPath -Path $folder)) {
    $module.FailJson("folder '$folder' is not a full path: give a drive and its root (D:\Restore\web01) or a share. Nothing was changed.")
}
if ($params.name.Trim() -eq '' -or $params.name -ne $params.name.Trim()) {
    $module.FailJson("name '$($params.name)' is empty or starts or ends with a space: give the restored VM's display name. Nothing was changed.")
}
$module.Result.folder = $folder
try {
    $marker = Read-HvRestoreMarker -Folder $folder
}
catch {
    $module.FailJson("The restore marker in '$folder' cannot be read: $($_.Exception.Message). Nothing was changed.", $_)
}
$named = @(Get-NamedVirtualMachine -Name $params.name)
$systems = @()
if ($null -ne $marker) {
    $systems = @(Find-HvRestoredSystem -Marker $marker)
}
$ours = @($systems | Where-Object { $_.CimSystemProperties.ClassName -eq 'Msvm_ComputerSystem' })[0]

# A replace that removed the VM it replaces but was not recorded as done (a dropped connection, a host restart).
$unrecorded = $false
if ($null -ne $marker -and $marker.status -ne 'done' -and $null -ne $marker['replaced'] -and $null -ne $ours) {
    $unrecorded = @(Find-VirtualMachine -Id $marker.replaced.vm.id).Count -eq 0
}
if ($unrecorded -and $params.state -eq 'absent') {
    $module.FailJson("The restore recorded in '$folder' replaced VM '$($marker.replaced.vm.name)' ($($marker.replaced.vm.id)), which is gone, " +
        "and was not recorded as done: VM $(Format-HvVirtualMachineList -VirtualMachine @($ours)) is the only copy. Nothing was changed: run " +
        'the restore (state=present) again to record it; remove the VM by hand if that is really meant.')
}
if ($params.state -eq 'absent') {
    if ($null -eq $marker) {
        if ($named.Count -gt 0) {
            $module.FailJson("VM $(Format-HvVirtualMachineList -VirtualMachine @($named[0])) was not restored into '$folder' by this collection " +
                '(no restore is recorded there), so it is not removed. Nothing was changed.')
        }
        $module.ExitJson()
    }
    if ($null -ne $ours -and -not [string]::Equals($ours.ElementName, $params.name, [StringComparison]::OrdinalIgnoreCase)) {
        $module.FailJson("The restore recorded in '$folder' is VM $(Format-HvVirtualMachineList -VirtualMachine @($ours)), not " +
            "'$($params.name)'. Nothing was changed.")
    }
    $module.Result.changed = $true
    $module.Result.vm = @{ id = $marker.vm.id; name = $marker.vm.name; state = 'absent' }
    if (-not $module.CheckMode) {
        try {
            Remove-Restored -Marker $marker -System $systems -Params $params
        }
        catch {
            $module.FailJson("Removing the restored VM '$($params.name)' ($($marker.vm.id)) from '$folder' failed: $($_.Exception.Message)", $_)
        }
    }
    $module.ExitJson()
}

if ($unrecorded -and [string]::Equals($ours.ElementName, $params.name, [StringComparison]::OrdinalIgnoreCase) -and
    -not (Get-MarkerMismatch -Marker $marker -Params $params)) {
    # The restored VM is all there is now, so it is recorded as done, never removed.
    $marker.status = 'done'
    if (-not $module.CheckMode) {
        Save-HvRestoreMarker -Folder $folder -Marker $marker
    }
    $module.Result.changed = $true
    $module.Result.vm = @{ id = ([guid]$ours.Name).ToString(); name = $ours.ElementName; state = (Get-HvVirtualMachineState -VirtualMachine $ours) }
    $module.Result.source = $marker.source
    $module.Result.replaced = $marker.replaced
    $module.ExitJson()
}
if ($null -ne $marker -and $marker.status -ne 'done') {
    $module.FailJson("'$folder' holds a restore of '$($marker.vm.name)' that did not finish. Nothing was changed: remove what it left with " +
        "state=absent and name '$($marker.vm.name)', then run the restore again.")
}
if ($null -ne $ours -and [string]::Equals($ours.ElementName, $params.name, [StringComparison]::OrdinalIgnoreCase)) {
    $mismatch = Get-MarkerMismatch -Marker $marker -Params $params
    if ($mismatch) {
        $module.FailJson("VM $(Format-HvVirtualMachineList -VirtualMachine @($ours)) in '$folder' is not the restore asked for: $mismatch. " +
            'Nothing was changed: remove it with state=absent, or choose another name and folder.')
    }
    # Idempotent by target name and folder: this folder's restore is that VM.
    $module.Result.vm = @{ id = ([guid]$ours.Name).ToString(); name = $ours.ElementName; state = (Get-HvVirtualMachineState -VirtualMachine $ours) }
    $module.Result.source = $marker.source
    $module.Result.replaced = $marker['replaced']
    $module.ExitJson()
}
if ($named.Count -gt 0 -and -not $params.replace) {
    $existing = Format-HvVirtualMachineList -VirtualMachine $named
    $module.FailJson("A VM named '$($params.name)' already exists on host ${env:COMPUTERNAME}: $existing. " +
        "It was not restored into '$folder'. Nothing was changed: choose another name, remove that VM, or, if it is the backed-up VM, " +
        'set replace=true to restore over it.')
}
if ($null -ne $marker) {
    $now = if ($null -ne $ours) { "now named '$($ours.ElementName)'" } else { 'no longer on the host' }
    $module.FailJson("'$folder' holds the restore of VM '$($marker.vm.name)' ($($marker.vm.id)), $now. Nothing was changed: " +
        "remove it with state=absent and name '$($marker.vm.name)', or choose another folder.")
}
$problem = Get-HvRestoreFolderProblem -Folder $folder
if ($problem) {
    $module.FailJson("Cannot restore into '$folder': $problem. Nothing was changed.")
}
if (-not (Test-HvFullPath -Path $params.path)) {
    $module.FailJson("path '$($params.path)' is not a full path: give the backup folder as backup_info reads it. Nothing was changed.")
}
try {
    $plan = Get-HvRestorePlan -Path $params.path -Vm $params.vm -Point $params.restore_point
}
catch {
    $module.FailJson("Cannot restore VM '$($params.vm)' from '$($params.path)': $($_.Exception.Message). Nothing was changed.", $_)
}
$planned = ConvertTo-PlanResult -Plan $plan
$module.Result.source = $planned.source
$module.Result.disks = $planned.disks
$module.Result.replaced = $null
$replace = $null
if ($named.Count -gt 0) {
    $refusal = if ($named.Count -gt 1) {
        "more than one VM has that name ($(Format-HvVirtualMachineList -VirtualMachine $named))"
    }
    else {
        Get-HvReplaceProblem -VirtualMachine $named[0] -BackedUpId $planned.source.vm.id
    }
    if ($refusal) {
        $module.FailJson("Cannot restore backup '$($planned.source.restore_point)' of VM '$($params.vm)' over '$($params.name)': $refusal. " +
            'Nothing was changed.')
    }
    $replace = @{ system = $named[0]; report = Get-HvReplacedSystem -VirtualMachine $named[0] }
    $module.Result.replaced = $replace.report
}
$module.Result.changed = $true
if ($module.CheckMode) {
    $module.Result.vm = @{ id = $null; name = $params.name; state = $null }
    $module.ExitJson()
}

try {
    $done = Invoke-Restore -Plan $plan -Params $params -Replace $replace
}
catch {
    # Changed only when something could not be removed and is left recorded.
    $module.Result.changed = [bool]($_.Exception.Data['HvLeft'] -or $_.Exception.Data['HvChanged'])
    $module.FailJson("Restoring backup '$($plan.restore_point.label)' of VM '$($params.vm)' as '$($params.name)' into '$folder' $($_.Exception.Message)", $_)
}
$module.Result.vm = $done.vm
$module.Result.replaced = $done.replaced
$module.Result.network = $done.network
$module.Result.validation = $done.validation
# Only an adapter that had a switch and lost it is news: one disconnected as asked, or already when backed up, is not.
foreach ($entry in $done.network | Where-Object { -not $_.connected -and $params.connect_network -and $_.reason -like 'this host has no switch*' }) {
    $module.Warn("Network adapter $($entry.adapter) of '$($params.name)' was on switch '$($entry.backed_up_switch)': $($entry.reason); " +
        'it is left disconnected.')
}
foreach ($text in $done.validation) {
    $module.Warn("Hyper-V, validating '$($params.name)': $text")
}
if ($null -ne $done.replaced -and $done.replaced.files_kept.Count -gt 0) {
    $module.Warn("VM '$($params.name)' ($($done.replaced.vm.id)) was replaced and removed from the host; its disks are kept: " +
        "$($done.replaced.files_kept -join ', '). Delete them once the restored VM is checked.")
}
if ($params.start) {
    $vm = Get-HvVirtualMachine -Id $done.vm.id
    $which = Format-HvVirtualMachineList -VirtualMachine @($vm)
    try {
        $heartbeat = Start-Restored -VirtualMachine $vm -Params $params
    }
    catch {
        $module.FailJson("VM $which was restored into '$folder' but did not start: $($_.Exception.Message). It is left " +
            "registered and off; remove it with state=absent.", $_)
    }
    $module.Result.vm.state = 'running'
    $module.Result.heartbeat = $heartbeat
    if ($heartbeat -notin @('ok', 'degraded')) {
        $module.FailJson("VM $which was restored into '$folder' and started, but its heartbeat was not OK within " +
            "$($params.heartbeat_timeout) seconds (last: $heartbeat). It is left running: check its console, or remove it with state=absent.")
    }
}
$module.ExitJson()
