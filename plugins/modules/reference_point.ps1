#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvVirtualMachine
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCimJob
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCatalog
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvReferencePoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvBatch

$spec = @{
    options = @{
        name = @{ type = 'str' }
        instance_id = @{ type = 'str' }
        state = @{ type = 'str'; choices = @('absent', 'present'); default = 'present' }
        type = @{ type = 'str'; choices = @('log', 'rct'); default = 'rct' }
        consistency = @{ type = 'str'; choices = @('application', 'crash'); default = 'application' }
        allow_foreign = @{ type = 'bool'; default = $false }
        run_id = @{ type = 'str'; default = '' }
        wait_timeout = @{ type = 'int'; default = 30 }
        job_id = @{ type = 'str' }
        vms = @{
            type = 'list'
            elements = 'dict'
            options = @{
                vm = @{ type = 'str' }
                vm_id = @{ type = 'str' }
                name = @{ type = 'str' }
                instance_id = @{ type = 'str' }
            }
            # One statement with commas: statements on separate lines inside @() would be
            # unrolled into one flat list of names, which Ansible.Basic cannot read.
            mutually_exclusive = @(@('vm', 'vm_id'), @('name', 'instance_id'))
            required_one_of = @(, @('vm', 'vm_id'))
        }
    }
    mutually_exclusive = @(
        , @('name', 'instance_id')
    )
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec)))

Function Get-EntryView {
    <#
    .SYNOPSIS
    Returns a catalog entry as the diff shows it (an empty hashtable for none).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [AllowNull()]
        [hashtable]
        $Entry
    )

    if ($null -eq $Entry) {
        return @{}
    }
    $Entry.Clone()
}

Function Update-Catalog {
    <#
    .SYNOPSIS
    Runs a change on the catalog under its lock and saves it; returns what the change returns.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [scriptblock]
        $Change
    )

    $lock = Lock-HvCatalog -Path $Path
    try {
        $catalog = Read-HvCatalog -Path $Path
        $output = & $Change $catalog
        Save-HvCatalog -Path $Path -Catalog $catalog
        $output
    }
    finally {
        $lock.Dispose()
    }
}

Function Get-CreatedReferencePoint {
    <#
    .SYNOPSIS
    Returns the reference point a creation job made, or nothing if it made none (yet).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [AllowNull()]
        [object]
        $Job
    )

    if ($null -ne $Job -and (ConvertTo-HvJobResult -Job $Job).succeeded) {
        Get-HvJobProduct -Job $Job -ResultClassName Msvm_VirtualSystemReferencePoint | Select-Object -First 1
    }
}

Function Complete-Entry {
    <#
    .SYNOPSIS
    Records in the catalog how a creation job ended; returns the reference point it made.

    .DESCRIPTION
    A job that made a reference point turns the pending entry into a ready one. A job that
    failed, or vanished without a product, drops the pending entry, so the next run creates
    again rather than waiting for something that will never come.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [hashtable]
        $Entry,

        [AllowNull()]
        [object]
        $Job
    )

    $made = Get-CreatedReferencePoint -Job $Job
    $null = Update-Catalog -Path $Path -Change {
        param ($catalog)
        if ($null -eq $made) {
            Remove-HvCatalogEntry -Catalog $catalog -VmId $Entry.vm_id -Name $Entry.name
        }
        else {
            $Entry.status = 'ready'
            $Entry.instance_id = $made.InstanceID
            Set-HvCatalogEntry -Catalog $catalog -Entry $Entry
        }
    }
    $made
}

Function Set-ReferencePointResult {
    <#
    .SYNOPSIS
    Puts a reference point and its catalog entry in the result of the VM's step.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity,

        [Parameter(Mandatory)]
        [object]
        $ReferencePoint,

        [AllowNull()]
        [hashtable]
        $Entry
    )

    $Module.Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $ReferencePoint -VmIdentity $Identity -CatalogEntry $Entry
}

Function Set-JobResult {
    <#
    .SYNOPSIS
    Puts a job in the result of the VM's step and fails the step when the job failed.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [AllowNull()]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [string]
        $JobId,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    if ($null -eq $Job) {
        $Module.Result.job = @{ id = $JobId; state = 'gone' }
        return
    }
    $jobResult = ConvertTo-HvJobResult -Job $Job
    $Module.Result.job = $jobResult
    $Module.Result.pending = -not $jobResult.finished
    if ($jobResult.finished -and -not $jobResult.succeeded) {
        $Module.FailJson((Format-HvJobFailure -JobResult $jobResult -Action $Action))
    }
}

Function Invoke-ReferencePointStep {
    <#
    .SYNOPSIS
    Does the task's work for one VM; ends with the module's ExitJson or FailJson.

    .DESCRIPTION
    Run once against the module itself, or once per entry of vms (and again when its job
    ended; the catalog holds the job id) against a stand-in module; see HvBatch.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $module
    )

    $state = $module.Params.state
    $label = $module.Params.name
    $instanceId = $module.Params.instance_id
    $waitTimeout = $module.Params.wait_timeout
    $catalogPath = Resolve-HvCatalogPath -Path $module.Params.catalog_path

    # Identity first, so that every failure below says which VM it was about.
    $module.Result.changed = $false
    $module.Result.pending = $false
    $module.Result.vm = @{ name = $module.Params.vm; id = $module.Params.vm_id }
    $module.Result.reference_point = $null
    $module.Result.job = $null
    $module.Diff.before = @{}
    $module.Diff.after = @{}

    if ($waitTimeout -lt 0) {
        $module.FailJson("wait_timeout must be 0 or more seconds, got $waitTimeout.")
    }
    if (-not $label -and -not $instanceId) {
        $module.FailJson("Reference point of VM '$($module.Params.vm)$($module.Params.vm_id)' needs name or instance_id, for the task or for the VM in vms.")
    }
    if ($label -and $instanceId) {
        $module.FailJson('name and instance_id are mutually exclusive: name selects by catalog name, instance_id by InstanceID.')
    }
    if ($state -eq 'present' -and $instanceId) {
        $module.FailJson('instance_id selects a reference point to remove (state=absent); give name with state=present.')
    }

    try {
        $vm = Get-HvStepVirtualMachine -Module $module
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine $vm
        $module.Result.vm = $identity
        $existing = @(Get-HvReferencePoint -VirtualMachine $vm)
        $catalog = Read-HvCatalog -Path $catalogPath
    }
    catch {
        $module.FailJson("Reference point of VM '$($module.Result.vm.name)$($module.Result.vm.id)': $($_.Exception.Message)", $_)
    }
    $action = "Reference point '$label' of VM '$($identity.name)'"

    if ($state -eq 'present') {
        $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $label | Select-Object -First 1
        $module.Diff.before = Get-EntryView -Entry $entry

        if ($null -ne $entry -and $entry.status -eq 'ready') {
            $found = Select-HvReferencePoint -ReferencePoint $existing -InstanceId $entry.instance_id
            if ($null -ne $found) {
                Set-ReferencePointResult -Module $module -Identity $identity -ReferencePoint $found -Entry $entry
                $module.Diff.after = Get-EntryView -Entry $entry
                $module.ExitJson()
            }
            $module.Warn("$action was recorded as $($entry.instance_id), which no longer exists on the host (removed outside this collection); a new one is made.")
        }
        elseif ($null -ne $entry -and $entry.job_id) {
            # A run started this creation and stopped before recording its end: follow that job
            # instead of starting a second reference point.
            $followFor = if ($module.CheckMode) { 0 } else { $waitTimeout }
            $job = Wait-HvCimJob -InstanceId $entry.job_id -TimeoutSeconds $followFor
            if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
                $module.Result.changed = $true
                $module.Diff.after = Get-EntryView -Entry $entry
                Set-JobResult -Module $module -Job $job -JobId $entry.job_id -Action "Creating $action"
                $module.ExitJson()
            }
            $made = Get-CreatedReferencePoint -Job $job
            if ($null -ne $made) {
                $module.Result.changed = $true
                if (-not $module.CheckMode) {
                    $null = Complete-Entry -Path $catalogPath -Entry $entry -Job $job
                }
                Set-ReferencePointResult -Module $module -Identity $identity -ReferencePoint $made -Entry $entry
                Set-JobResult -Module $module -Job $job -JobId $entry.job_id -Action "Creating $action"
                $module.Diff.after = Get-EntryView -Entry $entry
                $module.ExitJson()
            }
            if ($module.Params.job_id -and $module.Params.job_id -eq $entry.job_id -and -not $module.CheckMode) {
                # This task's own creation job, waited on with the other VMs' jobs, failed: report
                # it (the pending entry is dropped) rather than starting another creation.
                $null = Complete-Entry -Path $catalogPath -Entry $entry -Job $job
                Set-JobResult -Module $module -Job $job -JobId $entry.job_id -Action "Creating $action"
            }
            $module.Warn("$action was being created by job $($entry.job_id), which ended without a reference point; a new one is made.")
        }

        $module.Result.changed = $true
        $newEntry = New-HvCatalogEntry -VmIdentity $identity -Name $label -Type $module.Params.type -Consistency $module.Params.consistency -RunId $module.Params.run_id
        $module.Diff.after = Get-EntryView -Entry $newEntry
        if ($module.CheckMode) {
            $module.ExitJson()
        }

        try {
            # The lock is held from the catalog check to the pending record, so two plays asking
            # for the same name on one host cannot both start a creation.
            $output = Update-Catalog -Path $catalogPath -Change {
                param ($catalog)
                $current = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $label | Select-Object -First 1
                $seenStamp = if ($null -ne $entry) { $entry.created } else { $null }
                $currentStamp = if ($null -ne $current) { $current.created } else { $null }
                if ($currentStamp -ne $seenStamp) {
                    throw "another run recorded '$label' for this VM while this one was deciding; rerun the task."
                }
                $started = New-HvReferencePoint -VirtualMachine $vm -Type $module.Params.type -Consistency $module.Params.consistency
                if ($null -ne $started.Job) {
                    $newEntry.job_id = $started.Job.InstanceID
                }
                else {
                    $newEntry.status = 'ready'
                    $newEntry.instance_id = $started.ResultingReferencePoint.InstanceID
                }
                Set-HvCatalogEntry -Catalog $catalog -Entry $newEntry
                $started
            }
        }
        catch {
            $module.FailJson("Creating $action failed: $($_.Exception.Message)", $_)
        }

        $made = $null
        if ($newEntry.status -eq 'ready') {
            $made = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $vm) -InstanceId $newEntry.instance_id
        }
        else {
            $job = Wait-HvCimJob -InstanceId $newEntry.job_id -TimeoutSeconds $waitTimeout
            if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
                Set-JobResult -Module $module -Job $job -JobId $newEntry.job_id -Action "Creating $action"
                $module.Diff.after = Get-EntryView -Entry $newEntry
                $module.ExitJson()
            }
            $made = Complete-Entry -Path $catalogPath -Entry $newEntry -Job $job
            Set-JobResult -Module $module -Job $job -JobId $newEntry.job_id -Action "Creating $action"
        }
        if ($null -eq $made) {
            $module.FailJson("Creating $action returned $($output.ReturnValue) but the new reference point cannot be found on the host; run reference_point_info to check.")
        }
        Set-ReferencePointResult -Module $module -Identity $identity -ReferencePoint $made -Entry $newEntry
        $module.Diff.after = Get-EntryView -Entry $newEntry
        $module.ExitJson()
    }

    # state=absent
    if ($instanceId) {
        $entry = Find-HvCatalogEntry -Catalog $catalog -InstanceId $instanceId | Select-Object -First 1
        $target = Select-HvReferencePoint -ReferencePoint $existing -InstanceId $instanceId
        $action = "Reference point $instanceId of VM '$($identity.name)'"
        if ($null -ne $target -and $null -eq $entry -and -not $module.Params.allow_foreign) {
            $module.FailJson("$action was not made by this collection (it is not in the catalog '$catalogPath'); another backup product may depend on it. Set allow_foreign=true to remove it anyway.")
        }
    }
    else {
        $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $label | Select-Object -First 1
        $target = $null
        if ($null -ne $entry) {
            $target = Select-HvReferencePoint -ReferencePoint $existing -InstanceId $entry.instance_id
        }
    }
    $module.Diff.before = Get-EntryView -Entry $entry

    if ($null -ne $entry -and $entry.status -eq 'removing' -and $entry.job_id) {
        # A run started this removal and stopped before seeing its end: follow that job rather
        # than asking Hyper-V to destroy the same reference point twice.
        $followFor = if ($module.CheckMode) { 0 } else { $waitTimeout }
        $job = Wait-HvCimJob -InstanceId $entry.job_id -TimeoutSeconds $followFor
        if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
            $module.Result.changed = $true
            Set-JobResult -Module $module -Job $job -JobId $entry.job_id -Action "Removing $action"
            $module.ExitJson()
        }
        if ($null -ne $job -and $module.Params.job_id -eq $entry.job_id -and -not (ConvertTo-HvJobResult -Job $job).succeeded -and -not $module.CheckMode) {
            # This task's own removal job failed: report it once; the entry is ready again, so the
            # next run tries anew instead of reporting the same failure.
            $failedJobId = $entry.job_id
            $entry.status = 'ready'
            $entry.job_id = $null
            $null = Update-Catalog -Path $catalogPath -Change {
                param ($catalog)
                Set-HvCatalogEntry -Catalog $catalog -Entry $entry
            }
            Set-JobResult -Module $module -Job $job -JobId $failedJobId -Action "Removing $action"
        }
        $target = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $vm) -InstanceId $entry.instance_id
    }
    if ($null -eq $entry -and $module.Params.job_id) {
        # Removing a reference point the catalog does not know: only the job tells how it went.
        $job = Get-HvCimJob -InstanceId $module.Params.job_id
        if ($null -ne $job -and (Test-HvCimJobFinished -Job $job) -and -not (ConvertTo-HvJobResult -Job $job).succeeded) {
            Set-JobResult -Module $module -Job $job -JobId $module.Params.job_id -Action "Removing $action"
        }
    }
    if ($null -ne $entry -and $entry.status -eq 'pending') {
        # Its creation was started by a run that did not see the end: finish that first.
        $job = Get-HvCimJob -InstanceId $entry.job_id
        if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
            $module.FailJson("$action is still being created by job $($entry.job_id); wait for it (hyperv.backup.job_info with wait=true) before removing it.")
        }
        $target = Get-CreatedReferencePoint -Job $job
        if (-not $module.CheckMode) {
            $null = Complete-Entry -Path $catalogPath -Entry $entry -Job $job
        }
    }
    if ($null -eq $target -and $null -eq $entry) {
        $module.ExitJson()
    }

    $module.Result.changed = $true
    if ($module.CheckMode) {
        $module.ExitJson()
    }

    try {
        if ($null -ne $target) {
            $output = Remove-HvReferencePoint -ReferencePoint $target
            if ($null -ne $output.Job) {
                $jobId = $output.Job.InstanceID
                if ($null -ne $entry) {
                    $entry.status = 'removing'
                    $entry.job_id = $jobId
                    $null = Update-Catalog -Path $catalogPath -Change {
                        param ($catalog)
                        Set-HvCatalogEntry -Catalog $catalog -Entry $entry
                    }
                }
                $job = Wait-HvCimJob -InstanceId $jobId -TimeoutSeconds $waitTimeout
                Set-JobResult -Module $module -Job $job -JobId $jobId -Action "Removing $action"
                if ($module.Result.pending) {
                    # The catalog keeps the name until the removal is seen to end, so a rerun
                    # finds the reference point again rather than forgetting it half-removed.
                    $module.ExitJson()
                }
            }
        }
        if ($null -ne $entry) {
            $null = Update-Catalog -Path $catalogPath -Change {
                param ($catalog)
                Remove-HvCatalogEntry -Catalog $catalog -VmId $entry.vm_id -Name $entry.name
            }
        }
    }
    catch {
        if (Test-HvStepExit -ErrorRecord $_) {
            throw
        }
        $module.FailJson("Removing $action failed: $($_.Exception.Message)", $_)
    }
    $module.ExitJson()
}

Invoke-HvVmBatch -Module $module -Step ${function:Invoke-ReferencePointStep} -DistinctBy @('name', 'instance_id')
