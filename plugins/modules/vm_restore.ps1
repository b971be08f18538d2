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

Function Format-Vm {
    <#
    .SYNOPSIS
    Returns 'name (id)' of a VM, as every message names one.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $VirtualMachine
    )

    "'$($VirtualMachine.ElementName)' ($(([guid]$VirtualMachine.Name).ToString()))"
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

Function Invoke-Restore {
    <#
    .SYNOPSIS
    Restores a plan into a folder as a VM of the given name; returns the VM and what was done, or throws with what was left (nothing).

    .DESCRIPTION
    Every file written is recorded as it is written, and the planned system as soon as it
    exists, so that a failure at any step removes them: the folder is left as it was, the host
    has no half-registered VM, and the backup files are only ever read.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Plan,

        [Parameter(Mandatory)]
        [hashtable]
        $Params
    )

    $folder = $Params.folder
    $timeout = $Params.step_timeout
    $written = [System.Collections.Generic.List[string]]::new()
    $folders = @($folder, (Join-Path -Path $folder -ChildPath 'Virtual Hard Disks'), (Join-Path -Path $folder -ChildPath 'Virtual Machines'),
        (Join-Path -Path $folder -ChildPath 'Snapshots'))
    $planned = $null
    $vm = $null
    $step = 'copying the disks'
    try {
        $null = New-Item -Path $folder -ItemType Directory -Force
        $restored = [ordered]@{}
        foreach ($drive in $Plan.drives) {
            $restored[$drive.name] = Copy-HvRestoreDrive -Drive $drive -Folder $folder -TimeoutSeconds $timeout -Written $written
        }
        $step = 'importing the configuration'
        $configFolder = Join-Path -Path $folder -ChildPath 'Virtual Machines'
        $null = New-Item -Path $configFolder -ItemType Directory -Force
        $config = Join-Path -Path $configFolder -ChildPath (@(Get-HvPathPart -Path $Plan.configuration.path)[-1])
        $written.Add($config)
        Copy-Item -LiteralPath $Plan.configuration.path -Destination $config
        $planned = Import-HvPlannedSystem -ConfigurationFile $config -SnapshotFolder $folders[3] -TimeoutSeconds $timeout
        $step = 'setting up the imported VM'
        $setting = Get-HvSystemSetting -System $planned
        Set-HvPlannedSystemName -Setting $setting -Name $Params.name -TimeoutSeconds $timeout
        Set-HvPlannedDiskPath -Setting $setting -RestoredPath $restored -TimeoutSeconds $timeout
        $network = @(Set-HvPlannedNetwork -Setting $setting -SwitchMap $Params.switch_map -Connect $Params.connect_network -TimeoutSeconds $timeout)
        $step = 'validating the imported VM'
        $warnings = @(Test-HvPlannedSystem -Planned $planned -TimeoutSeconds $timeout)
        $step = 'registering the imported VM'
        $vm = Complete-HvPlannedSystem -Planned $planned -TimeoutSeconds $timeout
        $planned = $null
        $vmId = ([guid]$vm.Name).ToString()
        $step = 'recording the restore'
        Save-HvRestoreMarker -Folder $folder -Marker @{
            vm = @{ id = $vmId; name = $Params.name }
            source = (ConvertTo-PlanResult -Plan $Plan).source
            files = @($written | Where-Object { Test-Path -LiteralPath $_ -PathType Leaf })
            restored = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
        }
    }
    catch {
        $reason = $_.Exception.Message
        $left = @(Undo-Restore -Planned $planned -VirtualMachine $vm -Written $written -Folder $folders)
        $what = if ($left.Count -eq 0) { 'Nothing was left: the files written and the imported VM were removed.' }
        else { "Could not remove: $($left -join '; '). Remove them by hand." }
        throw "failed while ${step}: $reason $what"
    }
    @{
        vm = @{ id = $vmId; name = $Params.name; state = 'off' }
        disks = @($restored.Values)
        network = $network
        validation = $warnings
    }
}

Function Undo-Restore {
    <#
    .SYNOPSIS
    Removes what a failed restore made (the planned system or VM, the files written, the folders left empty); returns what could not be removed.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [AllowNull()]
        [object]
        $Planned,

        [AllowNull()]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [System.Collections.Generic.List[string]]
        $Written,

        [Parameter(Mandatory)]
        [string[]]
        $Folder
    )

    foreach ($system in @($Planned, $VirtualMachine)) {
        if ($null -eq $system) {
            continue
        }
        try {
            Remove-HvSystem -System $system -TimeoutSeconds 300
        }
        catch {
            "the imported VM $(Format-Vm -VirtualMachine $system) ($($_.Exception.Message))"
        }
    }
    Remove-HvRestoreFile -File @($Written) -Folder $Folder
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
    Removes a restore recorded in a folder: its VM (turned off first) and the files it wrote, throwing when any is left.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Marker,

        [AllowNull()]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $Params
    )

    if ($null -ne $VirtualMachine) {
        if ([int]$VirtualMachine.EnabledState -ne 3) {
            Set-HvVirtualMachinePower -VirtualMachine $VirtualMachine -State 3 -TimeoutSeconds $Params.step_timeout
        }
        Remove-HvSystem -System $VirtualMachine -TimeoutSeconds $Params.step_timeout
    }
    $folder = $Params.folder
    $folders = @($folder) + @('Virtual Hard Disks', 'Virtual Machines', 'Snapshots' | ForEach-Object { Join-Path -Path $folder -ChildPath $_ })
    $left = @(Remove-HvRestoreFile -File (@($Marker.files) + @(Get-HvRestoreMarkerPath -Folder $folder)) -Folder $folders)
    if ($left.Count -gt 0) {
        throw "could not remove $($left -join '; ')"
    }
}

# ---------------------------------------------------------------------------------------------- main

$params = @{}
foreach ($key in $module.Params.Keys) {
    $params[$key] = $module.Params[$key]
}
$folder = $params.folder
if (-not (Test-HvFullPath -Path $folder)) {
    $module.FailJson("folder '$folder' is not a full path: give a drive and its root (D:\Restore\web01) or a share. Nothing was changed.")
}
if ($params.name.Trim() -eq '' -or $params.name -ne $params.name.Trim()) {
    $module.FailJson("name '$($params.name)' is empty or starts or ends with a space: give the restored VM's display name. Nothing was changed.")
}
$module.Result.folder = $folder
$marker = Read-HvRestoreMarker -Folder $folder
$named = @(Get-NamedVirtualMachine -Name $params.name)
$ours = $null
if ($null -ne $marker) {
    $ours = @(Get-HvVirtualMachineList | Where-Object { ([guid]$_.Name).ToString() -eq [string]$marker.vm.id })[0]
}

if ($params.state -eq 'absent') {
    if ($null -eq $marker) {
        if ($named.Count -gt 0) {
            $module.FailJson("VM $(Format-Vm -VirtualMachine $named[0]) was not restored into '$folder' by this collection (no restore is recorded " +
                "there), so it is not removed. Nothing was changed.")
        }
        $module.ExitJson()
    }
    if ($null -ne $ours -and -not [string]::Equals($ours.ElementName, $params.name, [StringComparison]::OrdinalIgnoreCase)) {
        $module.FailJson("The restore recorded in '$folder' is VM $(Format-Vm -VirtualMachine $ours), not '$($params.name)'. Nothing was changed.")
    }
    $module.Result.changed = $true
    $module.Result.vm = $marker.vm
    if (-not $module.CheckMode) {
        try {
            Remove-Restored -Marker $marker -VirtualMachine $ours -Params $params
        }
        catch {
            $module.FailJson("Removing the restored VM '$($params.name)' ($($marker.vm.id)) from '$folder' failed: $($_.Exception.Message)", $_)
        }
    }
    $module.ExitJson()
}

if ($null -ne $ours -and [string]::Equals($ours.ElementName, $params.name, [StringComparison]::OrdinalIgnoreCase)) {
    # Idempotent by target name: this folder's restore is that VM.
    $module.Result.vm = @{ id = ([guid]$ours.Name).ToString(); name = $ours.ElementName; state = (Get-HvVirtualMachineState -VirtualMachine $ours) }
    $module.Result.source = $marker.source
    $module.ExitJson()
}
if ($named.Count -gt 0) {
    $existing = ($named | ForEach-Object { Format-Vm -VirtualMachine $_ }) -join ', '
    $module.FailJson("A VM named '$($params.name)' already exists on host ${env:COMPUTERNAME}: $existing. " +
        "It was not restored into '$folder'. Nothing was changed: choose another name, or remove that VM.")
}
if ($null -ne $marker) {
    $module.FailJson("'$folder' holds the restore of VM '$($marker.vm.name)' ($($marker.vm.id)), which is no longer on the host. Nothing was changed: " +
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
$module.Result.changed = $true
if ($module.CheckMode) {
    $module.Result.vm = @{ id = $null; name = $params.name; state = $null }
    $module.ExitJson()
}

try {
    $done = Invoke-Restore -Plan $plan -Params $params
}
catch {
    $module.Result.changed = $false
    $module.FailJson("Restoring backup '$($plan.restore_point.label)' of VM '$($params.vm)' as '$($params.name)' into '$folder' $($_.Exception.Message)", $_)
}
$module.Result.vm = $done.vm
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
if ($params.start) {
    $vm = @(Get-HvVirtualMachineList | Where-Object { ([guid]$_.Name).ToString() -eq $done.vm.id })[0]
    try {
        $heartbeat = Start-Restored -VirtualMachine $vm -Params $params
    }
    catch {
        $module.FailJson("VM $(Format-Vm -VirtualMachine $vm) was restored into '$folder' but did not start: $($_.Exception.Message). It is left " +
            "registered and off; remove it with state=absent.", $_)
    }
    $module.Result.vm.state = 'running'
    $module.Result.heartbeat = $heartbeat
    if ($heartbeat -ne 'ok') {
        $module.FailJson("VM $(Format-Vm -VirtualMachine $vm) was restored into '$folder' and started, but its heartbeat was not OK within " +
            "$($params.heartbeat_timeout) seconds (last: $heartbeat). It is left running: check its console, or remove it with state=absent.")
    }
}
$module.ExitJson()
