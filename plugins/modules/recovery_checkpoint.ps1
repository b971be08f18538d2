#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvVirtualMachine
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCimJob
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCatalog
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCheckpoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvReferencePoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvBatch

$spec = @{
    options = @{
        name = @{ type = 'str'; required = $true }
        state = @{ type = 'str'; choices = @('absent', 'converted', 'present'); default = 'present' }
        consistency = @{ type = 'str'; choices = @('application', 'crash'); default = 'application' }
        crash_fallback = @{ type = 'bool'; default = $false }
        cleanup_leftovers = @{ type = 'bool'; default = $true }
        reference_point_name = @{ type = 'str' }
        mode = @{ type = 'str'; choices = @('full', 'incremental') }
        base = @{ type = 'str' }
        run_id = @{ type = 'str'; default = '' }
        job_id = @{ type = 'str' }
        wait_timeout = @{ type = 'int'; default = 30 }
        vms = @{
            type = 'list'
            elements = 'dict'
            options = @{
                vm = @{ type = 'str' }
                vm_id = @{ type = 'str' }
                consistency = @{ type = 'str'; choices = @('application', 'crash') }
                mode = @{ type = 'str'; choices = @('full', 'incremental') }
                base = @{ type = 'str' }
            }
            mutually_exclusive = @(, @('vm', 'vm_id'))
            required_one_of = @(, @('vm', 'vm_id'))
        }
        job_ids = @{ type = 'dict' }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec)))

Function Wait-Job {
    <#
    .SYNOPSIS
    Waits for a method's job; returns the finished job, or exits the module with it pending.

    .DESCRIPTION
    A failed job fails the module with every error text Hyper-V gave; a job still running after
    wait_timeout is returned (pending) for the controller to follow and then rerun with job_id.
    Module is the module object of the VM's step (the module itself, or a stand-in for one VM).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ConcreteJob')]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds,

        [Parameter(Mandatory)]
        [string]
        $JobId,

        [Parameter(Mandatory)]
        [string]
        $Action,

        [switch]
        $AllowFailure
    )

    $job = Wait-HvCimJob -InstanceId $JobId -TimeoutSeconds $TimeoutSeconds
    if ($null -eq $job) {
        $Module.Result.job = @{ id = $JobId; state = 'gone' }
        return
    }
    $jobResult = ConvertTo-HvJobResult -Job $job
    $Module.Result.job = $jobResult
    if (-not $jobResult.finished) {
        $Module.Result.pending = $true
        $Module.ExitJson()
    }
    if (-not $jobResult.succeeded -and -not $AllowFailure) {
        $Module.FailJson((Format-HvJobFailure -JobResult $jobResult -Action $Action))
    }
    $job
}

Function Set-CheckpointList {
    <#
    .SYNOPSIS
    Puts the VM's recovery checkpoints, as they are now, in the result of the VM's step.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    $Module.Result.checkpoints = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine | ForEach-Object { ConvertTo-HvCheckpointResult -Checkpoint $_ })
}

Function Invoke-CheckpointStep {
    <#
    .SYNOPSIS
    Does the task's work for one VM; ends with the module's ExitJson or FailJson.

    .DESCRIPTION
    Run once against the module itself, or once per VM of vms (and again when the VM's job
    ended) against a stand-in module; see HvBatch.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $module
    )

    $state = $module.Params.state
    $label = $module.Params.name
    $waitTimeout = $module.Params.wait_timeout
    $pointName = if ($module.Params.reference_point_name) { $module.Params.reference_point_name } else { $label }
    $catalogPath = Resolve-HvCatalogPath -Path $module.Params.catalog_path

    $module.Result.changed = $false
    $module.Result.pending = $false
    $module.Result.vm = @{ name = $module.Params.vm; id = $module.Params.vm_id }
    $module.Result.checkpoint = $null
    $module.Result.consistency = $null
    $module.Result.reference_point = $null
    $module.Result.removed_leftovers = @()
    $module.Result.checkpoints = @()
    $module.Result.job = $null

    if ($waitTimeout -lt 0) {
        $module.FailJson("wait_timeout must be 0 or more seconds, got $waitTimeout.")
    }

    try {
        $vm = Get-HvStepVirtualMachine -Module $module
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine $vm
        $module.Result.vm = $identity
        $existing = @(Get-HvRecoveryCheckpoint -VirtualMachine $vm)
    }
    catch {
        $module.FailJson("Recovery checkpoint '$label' of VM '$($module.Result.vm.name)$($module.Result.vm.id)': $($_.Exception.Message)", $_)
    }
    $action = "Recovery checkpoint '$label' of VM '$($identity.name)'"
    $mine = Select-HvRecoveryCheckpoint -Checkpoint $existing -Label $label

    try {
        if ($state -eq 'present') {
            $consistency = $module.Params.consistency
            $job = $null
            if ($null -eq $mine -and $module.Params.job_id) {
                # The job this VM's work is waiting on has ended (seen by the controller or by
                # the module's wait on many VMs): adopt what it made, or fall back when it failed.
                $job = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $module.Params.job_id -Action "Creating $action" -AllowFailure
                if ($null -ne $job -and (ConvertTo-HvJobResult -Job $job).succeeded) {
                    $mine = Get-HvJobProduct -Job $job -ResultClassName Msvm_VirtualSystemSettingData | Select-Object -First 1
                    if ($null -ne $mine) {
                        $module.Result.changed = $true
                        $module.Result.consistency = $consistency
                        $null = Set-HvCheckpointTag -Checkpoint $mine -Label $label
                    }
                    # A job that made no checkpoint was a leftover's removal: the creation is still to do.
                    $job = $null
                }
            }
            if ($null -ne $mine) {
                $module.Result.checkpoint = ConvertTo-HvCheckpointResult -Checkpoint $mine
                Set-CheckpointList -Module $module -VirtualMachine $vm
                $module.ExitJson()
            }

            $module.Result.changed = $true
            $module.Result.consistency = $consistency
            if ($null -eq $job) {
                $leftovers = @($existing | Where-Object { Test-HvCheckpointOwned -Checkpoint $_ })
                $foreign = @($existing | Where-Object { -not (Test-HvCheckpointOwned -Checkpoint $_) })
                foreach ($other in $foreign) {
                    $module.Warn("VM '$($identity.name)' has a recovery checkpoint '$($other.ElementName)' ($($other.InstanceID)) made by other software; it is left alone.")
                }
                if ($module.CheckMode) {
                    $module.ExitJson()
                }
                if ($module.Params.cleanup_leftovers) {
                    foreach ($leftover in $leftovers) {
                        # Left by an earlier run that failed half-way: it blocks merges and grows.
                        $output = Remove-HvRecoveryCheckpoint -Checkpoint $leftover
                        $module.Result.removed_leftovers += ConvertTo-HvCheckpointResult -Checkpoint $leftover
                        if ($null -ne $output.Job) {
                            $null = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $output.Job.InstanceID -Action "Removing leftover recovery checkpoint '$($leftover.ElementName)' of VM '$($identity.name)'"
                        }
                    }
                }
                $output = New-HvRecoveryCheckpoint -VirtualMachine $vm -Consistency $consistency
                $job = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $output.Job.InstanceID -Action "Creating $action" -AllowFailure
            }
            if ($null -ne $job -and -not (ConvertTo-HvJobResult -Job $job).succeeded) {
                $failure = Format-HvJobFailure -JobResult (ConvertTo-HvJobResult -Job $job) -Action "Creating $action"
                if ($consistency -ne 'application' -or -not $module.Params.crash_fallback) {
                    $module.FailJson($failure)
                }
                # Application consistency needs the guest's integration services and VSS; when
                # that fails the caller may accept a crash-consistent checkpoint instead.
                $module.Warn("$failure Falling back to a crash-consistent checkpoint (crash_fallback=true).")
                $consistency = 'crash'
                $module.Result.consistency = $consistency
                $output = New-HvRecoveryCheckpoint -VirtualMachine $vm -Consistency $consistency
                $job = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $output.Job.InstanceID -Action "Creating $action (crash consistent)"
            }
            $made = if ($null -ne $job) { Get-HvJobProduct -Job $job -ResultClassName Msvm_VirtualSystemSettingData | Select-Object -First 1 }
            if ($null -eq $made) {
                $module.FailJson("Creating $action finished but Hyper-V reported no checkpoint; check the VM in Hyper-V Manager.")
            }
            $null = Set-HvCheckpointTag -Checkpoint $made -Label $label
            $module.Result.checkpoint = ConvertTo-HvCheckpointResult -Checkpoint $made
            Set-CheckpointList -Module $module -VirtualMachine $vm
            $module.ExitJson()
        }

        if ($state -eq 'absent') {
            if ($null -ne $mine) {
                $module.Result.changed = $true
                if (-not $module.CheckMode) {
                    $output = Remove-HvRecoveryCheckpoint -Checkpoint $mine
                    if ($null -ne $output.Job) {
                        $null = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $output.Job.InstanceID -Action "Removing $action"
                    }
                }
            }
            Set-CheckpointList -Module $module -VirtualMachine $vm
            $module.ExitJson()
        }

        # state=converted: the checkpoint becomes the reference point named reference_point_name.
        $lock = if ($module.CheckMode) { $null } else { Lock-HvCatalog -Path $catalogPath }
        try {
            $catalog = Read-HvCatalog -Path $catalogPath
            $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $pointName | Select-Object -First 1
            $points = @(Get-HvReferencePoint -VirtualMachine $vm)
            $point = $null
            if ($null -ne $entry) {
                $point = Select-HvReferencePoint -ReferencePoint $points -InstanceId $entry.instance_id
            }
            # A conversion started earlier (by this task before the controller took over, or by a
            # run that died) is followed through its job, never started twice.
            $resumeJobId = $module.Params.job_id
            if (-not $resumeJobId -and $null -ne $entry -and $entry.status -eq 'pending') {
                $resumeJobId = $entry.job_id
            }
            if ($null -eq $point -and $null -eq $mine -and $resumeJobId) {
                $job = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $resumeJobId -Action "Converting $action"
                if ($null -ne $job) {
                    $point = Get-HvJobProduct -Job $job -ResultClassName Msvm_VirtualSystemReferencePoint | Select-Object -First 1
                }
                $module.Result.changed = $true
            }
            elseif ($null -eq $point) {
                if ($null -eq $mine) {
                    $module.FailJson("$action does not exist, so it cannot be converted to reference point '$pointName'; create it first (state=present).")
                }
                $module.Result.changed = $true
                if ($module.CheckMode) {
                    $module.ExitJson()
                }
                $entry = New-HvCatalogEntry -VmIdentity $identity -Name $pointName -Type 'rct' -Consistency $module.Params.consistency -RunId $module.Params.run_id -Mode $module.Params.mode -Base $module.Params.base
                $output = Convert-HvRecoveryCheckpoint -Checkpoint $mine
                $entry.job_id = $output.Job.InstanceID
                Set-HvCatalogEntry -Catalog $catalog -Entry $entry
                Save-HvCatalog -Path $catalogPath -Catalog $catalog
                $job = Wait-Job -Module $module -TimeoutSeconds $waitTimeout -JobId $output.Job.InstanceID -Action "Converting $action"
                $point = Get-HvJobProduct -Job $job -ResultClassName Msvm_VirtualSystemReferencePoint | Select-Object -First 1
            }
            if ($null -eq $point) {
                $module.FailJson("Converting $action finished but Hyper-V reported no reference point; run reference_point_info to check.")
            }
            if ($module.Result.changed) {
                if ($null -eq $entry) {
                    $entry = New-HvCatalogEntry -VmIdentity $identity -Name $pointName -Type 'rct' -Consistency $module.Params.consistency -RunId $module.Params.run_id -Mode $module.Params.mode -Base $module.Params.base
                }
                $entry.status = 'ready'
                $entry.instance_id = $point.InstanceID
                Set-HvCatalogEntry -Catalog $catalog -Entry $entry
                Save-HvCatalog -Path $catalogPath -Catalog $catalog
            }
            $module.Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $point -VmIdentity $identity -CatalogEntry $entry
        }
        finally {
            if ($null -ne $lock) {
                $lock.Dispose()
            }
        }
        Set-CheckpointList -Module $module -VirtualMachine $vm
    }
    catch {
        if (Test-HvStepExit -ErrorRecord $_) {
            throw
        }
        $module.FailJson("$action failed: $($_.Exception.Message)", $_)
    }
    $module.ExitJson()
}

Invoke-HvVmBatch -Module $module -Step ${function:Invoke-CheckpointStep} -ResumeOption @('consistency') -CollectKey @('removed_leftovers')
