#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvVirtualMachine
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvBatch
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCimJob
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCatalog
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCheckpoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvReferencePoint
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvExport

$spec = @{
    options = @{
        checkpoint = @{ type = 'str'; required = $true }
        destination = @{ type = 'path' }
        base = @{ type = 'str' }
        overwrite_partial = @{ type = 'bool'; default = $false }
        fallback_to_full = @{ type = 'bool'; default = $false }
        full_reason = @{ type = 'str' }
        job_id = @{ type = 'str' }
        wait_timeout = @{ type = 'int'; default = 30 }
        vms = @{
            type = 'list'
            elements = 'dict'
            options = @{
                vm = @{ type = 'str' }
                vm_id = @{ type = 'str' }
                destination = @{ type = 'path' }
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

Function Set-ExportResult {
    <#
    .SYNOPSIS
    Puts a complete export's marker in the result of the VM's step.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [hashtable]
        $Marker
    )

    $Module.Result.mode = $Marker.mode
    $Module.Result.base = $Marker.base
    $Module.Result.full_reason = $Marker.full_reason
    $Module.Result.files = @($Marker.files)
    $Module.Result.bytes = [long]$Marker.bytes
}

Function Invoke-ExportStep {
    <#
    .SYNOPSIS
    Does the task's work for one VM; ends with the module's ExitJson or FailJson.

    .DESCRIPTION
    Run once against the module itself, or once per VM of vms (and again when the VM's job
    ended) against a
    stand-in module; see HvBatch.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $module
    )

    $label = $module.Params.checkpoint
    $destination = $module.Params.destination
    $baseName = $module.Params.base
    $waitTimeout = $module.Params.wait_timeout
    $catalogPath = Resolve-HvCatalogPath -Path $module.Params.catalog_path

    $module.Result.changed = $false
    $module.Result.pending = $false
    $module.Result.vm = @{ name = $module.Params.vm; id = $module.Params.vm_id }
    $module.Result.destination = $destination
    $module.Result.mode = if ($baseName) { 'differential' } else { 'full' }
    $module.Result.base = $baseName
    $module.Result.full_reason = $null
    $module.Result.files = @()
    $module.Result.bytes = 0
    $module.Result.job = $null

    if ($waitTimeout -lt 0) {
        $module.FailJson("wait_timeout must be 0 or more seconds, got $waitTimeout.")
    }
    if (-not $destination) {
        $module.FailJson("Export of VM '$($module.Params.vm)$($module.Params.vm_id)' needs a destination: set destination for the task or for the VM in vms.")
    }

    try {
        $vm = Get-HvStepVirtualMachine -Module $module
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine $vm
        $module.Result.vm = $identity
    }
    catch {
        $module.FailJson("Export of VM '$($module.Result.vm.name)$($module.Result.vm.id)': $($_.Exception.Message)", $_)
    }
    $action = "Export of VM '$($identity.name)' to '$destination'"

    try {
        $marker = Read-HvExportMarker -Destination $destination
        if ($null -ne $marker) {
            if ($marker.vm_id -ne $identity.id -or $marker.checkpoint -cne $label) {
                $module.FailJson("$action refused: the destination holds a complete export of VM '$($marker.vm_name)' checkpoint '$($marker.checkpoint)'. Choose another destination.")
            }
            Set-ExportResult -Module $module -Marker $marker
            $module.ExitJson()
        }

        $partial = @(Get-HvExportFile -Destination $destination)
        if ($partial.Count -gt 0 -and -not $module.Params.job_id) {
            if (-not $module.Params.overwrite_partial) {
                $module.FailJson("$action refused: the destination holds a partial export ($($partial.Count) files, no completion marker), probably from a run that failed. Set overwrite_partial=true to remove it and export again.")
            }
            $module.Warn("$action removes a partial export ($($partial.Count) files) before exporting again.")
        }

        $checkpoint = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $vm) -Label $label
        if ($null -eq $checkpoint) {
            $module.FailJson("$action needs the recovery checkpoint '$label', which VM '$($identity.name)' does not have; create it with hyperv.backup.recovery_checkpoint first.")
        }
        $basePoint = $null
        $whyFull = $null
        if ($module.Params.full_reason) {
            # Finishing an export that already fell back to full (the reason was given when it did).
            $whyFull = $module.Params.full_reason
        }
        elseif ($baseName) {
            $catalog = Read-HvCatalog -Path $catalogPath
            $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $baseName | Select-Object -First 1
            if ($null -ne $entry) {
                $basePoint = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $vm) -InstanceId $entry.instance_id
            }
            if ($null -eq $basePoint) {
                $whyFull = "the base reference point '$baseName' no longer exists"
            }
            else {
                $before = @($basePoint.VirtualDiskIdentifiers | ForEach-Object { Get-HvDiskDevicePart -DiskId $_ } | Sort-Object)
                $now = @(Get-HvCheckpointDisk -Checkpoint $checkpoint)
                $added = @($now | Where-Object { $before -notcontains $_ })
                $removed = @($before | Where-Object { $now -notcontains $_ })
                if ($added.Count -gt 0 -or $removed.Count -gt 0) {
                    $whyFull = "the VM's disk set changed since '$baseName' ($($added.Count) added, $($removed.Count) removed)"
                }
            }
            if ($whyFull) {
                if (-not $module.Params.fallback_to_full) {
                    $module.FailJson("$action cannot be differential: $whyFull. Take a full export (no base), or set fallback_to_full=true.")
                }
                $module.Warn("$action is full instead of differential: $whyFull.")
                $basePoint = $null
            }
        }
        if ($whyFull) {
            $module.Result.mode = 'full'
            $module.Result.full_reason = $whyFull
        }

        $module.Result.changed = $true
        if ($module.CheckMode) {
            $module.ExitJson()
        }

        $jobId = $module.Params.job_id
        if (-not $jobId) {
            if ($partial.Count -gt 0) {
                Clear-HvExportDestination -Destination $destination
            }
            elseif (-not (Test-Path -LiteralPath $destination)) {
                $null = New-Item -Path $destination -ItemType Directory -Force
            }
            $output = Start-HvExport -VirtualMachine $vm -Checkpoint $checkpoint -Destination $destination -BaseReferencePoint $basePoint
            $jobId = $output.Job.InstanceID
        }
        $job = Wait-HvCimJob -InstanceId $jobId -TimeoutSeconds $waitTimeout
        if ($null -eq $job) {
            $module.FailJson("$action lost track of job $jobId (Hyper-V no longer has it) and the destination has no completion marker; export again with overwrite_partial=true.")
        }
        $jobResult = ConvertTo-HvJobResult -Job $job
        $module.Result.job = $jobResult
        if (-not $jobResult.finished) {
            $module.Result.pending = $true
            $module.ExitJson()
        }
        if (-not $jobResult.succeeded -and $null -ne $basePoint -and $module.Params.fallback_to_full -and (Test-HvRctFailure -JobResult $jobResult)) {
            # The base's change tracking is gone (the VM moved, a disk was recreated, the RCT
            # log aged out): only a full export can be taken now.
            $whyFull = "the change tracking data of base '$baseName' is no longer valid ($($jobResult.error_description))"
            $module.Warn("$action is full instead of differential: $whyFull.")
            $module.Result.mode = 'full'
            $module.Result.full_reason = $whyFull
            Clear-HvExportDestination -Destination $destination
            $output = Start-HvExport -VirtualMachine $vm -Checkpoint $checkpoint -Destination $destination -BaseReferencePoint $null
            $job = Wait-HvCimJob -InstanceId $output.Job.InstanceID -TimeoutSeconds $waitTimeout
            $jobResult = ConvertTo-HvJobResult -Job $job
            $module.Result.job = $jobResult
            if (-not $jobResult.finished) {
                $module.Result.pending = $true
                $module.ExitJson()
            }
        }
        if (-not $jobResult.succeeded) {
            $module.FailJson((Format-HvJobFailure -JobResult $jobResult -Action $action))
        }
        $files = @(Get-HvExportFile -Destination $destination)
        $bytes = [long]0
        foreach ($file in $files) {
            $bytes += [long]$file.size
        }
        $marker = @{
            vm_id = $identity.id
            vm_name = $identity.name
            checkpoint = $label
            mode = $module.Result.mode
            base = if ($module.Result.mode -eq 'full') { $null } else { $baseName }
            full_reason = $module.Result.full_reason
            files = $files
            bytes = $bytes
            completed = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ')
        }
        Save-HvExportMarker -Destination $destination -Marker $marker
        Set-ExportResult -Module $module -Marker $marker
    }
    catch {
        if (Test-HvStepExit -ErrorRecord $_) {
            throw
        }
        $module.FailJson("$action failed: $($_.Exception.Message)", $_)
    }
    $module.ExitJson()
}

Invoke-HvVmBatch -Module $module -Step ${function:Invoke-ExportStep} -ResumeOption @('full_reason')
