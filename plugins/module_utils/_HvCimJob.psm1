# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Calling a Hyper-V method and following the job it may start. Hyper-V answers 4096 when
# the work goes on in a job (Msvm_ConcreteJob, or Msvm_StorageJob for disks); that is not success until the job says so.

#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance

$script:HvNamespace = 'root/virtualization/v2'

# Return values of the virtualization services (Microsoft's method pages). The hint says
# what an admin can do about it.
$script:HvReturnCode = @{
    1 = @('Not Supported', 'This host does not support the operation; check the Windows Server version and the VM configuration version.')
    2 = @('Failed', 'See the Hyper-V-VMMS event log on the host for the cause.')
    3 = @('Timeout', 'Hyper-V timed out; retry when the host is less busy.')
    4 = @('Invalid Parameter', 'Hyper-V rejected an argument; check the options given.')
    5 = @('Invalid State', 'The VM is in a state that does not allow this (migrating, saving, or busy with another backup); retry when it is settled.')
    6 = @('Invalid Type', 'Hyper-V rejected the type asked for on this VM.')
    32768 = @('Failed', 'See the Hyper-V-VMMS event log on the host for the cause.')
    32769 = @('Access Denied', 'Run as a member of Hyper-V Administrators or of the local Administrators group.')
    32770 = @('Not Supported', 'This host or disk does not support the operation.')
    32771 = @('Status is unknown', 'Check the operation in Hyper-V Manager before retrying.')
    32772 = @('Timeout', 'Hyper-V timed out; retry when the host is less busy.')
    32773 = @('Invalid Parameter', 'Hyper-V rejected an argument; check the options given.')
    32774 = @('System is in use', 'Another operation holds the VM; retry when it has finished.')
    32775 = @('Invalid State', 'The VM or disk is in a state that does not allow this; retry when it is settled.')
    32776 = @('Incorrect data type', 'Hyper-V rejected an argument type.')
    32777 = @('System is not available', 'The Hyper-V management service is not available; check that vmms is running.')
    32778 = @('Out of memory', 'The host is out of memory.')
    32779 = @('File not found', 'A file the operation needs is missing; check the VM''s disks.')
}

# The classes of the jobs Hyper-V starts, the common one first (see Get-HvCimJob).
$script:HvJobClasses = @('Msvm_ConcreteJob', 'Msvm_StorageJob')

$script:HvJobStateName = @{
    2 = 'new'; 3 = 'starting'; 4 = 'running'; 5 = 'suspended'; 6 = 'shutting_down'
    7 = 'completed'; 8 = 'terminated'; 9 = 'killed'; 10 = 'exception'; 11 = 'service'
    12 = 'query_pending'; 32768 = 'completed_with_warnings'
}

# The host's Hyper-V services, read once per module run: each is one instance per host, living as
# long as the management service, and a step of 50 VMs would otherwise read each one 50 times.
$script:HvServices = @{}

# Jobs this module run saw in a final state, by id, with when it saw them: a wait that saw a job
# end hands only its id on, and the step that then finishes the VM's work reads the job by id. A
# final job no longer changes, so that read is answered here instead of by one more WMI call per
# VM and step. Only for a minute: the step goes on to read what the job made through the job's
# associations, which needs the host to still have the job (it forgets one about five minutes
# after its end, TimeBeforeRemoval), and what Hyper-V answers for a forgotten one is not known.
# Past that, the job is read again and one the host forgot is reported as gone, as before.
$script:HvEndedJobs = [System.Collections.Generic.Dictionary[string, object]]::new([StringComparer]::OrdinalIgnoreCase)
$script:HvEndedJobTrustSeconds = 60

Function Get-HvService {
    <#
    .SYNOPSIS
    Returns the host's instance of a Hyper-V service class (Msvm_VirtualSystemManagementService, ...).

    .DESCRIPTION
    Read from the host on first use in a module run, then kept. A host without the class (an older
    Windows, no Hyper-V role) fails naming the class.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance')]
    param (
        [Parameter(Mandatory)]
        [ValidateSet('Msvm_VirtualSystemManagementService', 'Msvm_VirtualSystemSnapshotService', 'Msvm_ImageManagementService',
            'Msvm_VirtualSystemReferencePointService')]
        [string]
        $ClassName
    )

    if (-not $script:HvServices.ContainsKey($ClassName)) {
        $service = @(Get-CimInstance -Namespace $script:HvNamespace -ClassName $ClassName)
        if ($service.Count -eq 0) {
            throw ("Host $env:COMPUTERNAME has no ${ClassName}: the backups of this collection need Windows Server 2016 or Windows 10 " +
                'or later with the Hyper-V role.')
        }
        $script:HvServices[$ClassName] = $service[0]
    }
    $script:HvServices[$ClassName]
}

Function Get-HvReturnCodeMessage {
    <#
    .SYNOPSIS
    Returns the documented meaning of a method return value with what to do next.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [uint32]
        $ReturnValue
    )

    $known = $script:HvReturnCode[[int]$ReturnValue]
    if ($null -eq $known) {
        return "returned $ReturnValue (undocumented value)"
    }
    "returned $ReturnValue ($($known[0])). $($known[1])"
}

Function Invoke-HvCimMethod {
    <#
    .SYNOPSIS
    Calls a method and returns its output, throwing with the documented meaning on error.

    .DESCRIPTION
    Returns the CimMethodResult for 0 (done) and 4096 (job started; its Job holds the
    reference). Any other value throws "<Action> <return text>" so the caller's message says
    what was attempted.
    #>
    [CmdletBinding()]
    [OutputType([Microsoft.Management.Infrastructure.CimMethodResult])]
    param (
        [Parameter(Mandatory)]
        [object]
        $InputObject,

        [Parameter(Mandatory)]
        [string]
        $MethodName,

        [Parameter(Mandatory)]
        [hashtable]
        $Arguments,

        # What the call does, in words, for the error message.
        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $output = Invoke-CimMethod -InputObject $InputObject -MethodName $MethodName -Arguments $Arguments
    $code = [uint32]$output.ReturnValue
    if ($code -ne 0 -and $code -ne 4096) {
        $reason = "$MethodName $(Get-HvReturnCodeMessage -ReturnValue $code)"
        $exception = [System.InvalidOperationException]::new("$Action failed: $reason")
        # A caller that names the VM and the work itself takes the reason alone (Get-HvFailureReason).
        $exception.Data['HvReason'] = $reason
        throw $exception
    }
    $output
}

Function Get-HvFailureReason {
    <#
    .SYNOPSIS
    Returns why a call failed, without the action Invoke-HvCimMethod prefixed, for a caller whose message already says it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord
    )

    $reason = $ErrorRecord.Exception.Data['HvReason']
    if ($reason) {
        return [string]$reason
    }
    $ErrorRecord.Exception.Message
}

Function Get-HvCimJob {
    <#
    .SYNOPSIS
    Returns the job with the given InstanceID, or nothing when the host no longer has it.

    .DESCRIPTION
    The virtual system services' work is a Msvm_ConcreteJob, the image management service's a
    Msvm_StorageJob (merging, re-parenting or reading a disk): two classes side by side under
    CIM_ConcreteJob. A job id alone does not say which, so each class is asked in turn, the common
    one first, until one has the job. Microsoft does not say what a get by key in the wrong class
    answers, so any error moves on to the next class; it is thrown only when no class has the job
    and it was not "not found" (Hyper-V drops finished jobs after a while, TimeBeforeRemoval: not
    found is an answer). The job is read by key, not by a WQL filter, so the id never becomes query
    text. ClassName asks the host, in those classes only, for a caller that knows the class; without
    it, a job this run saw end less than a minute ago is answered from what it saw (Get-HvEndedCimJob).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
    param (
        [Parameter(Mandatory)]
        [string]
        $InstanceId,

        [ValidateSet('Msvm_ConcreteJob', 'Msvm_StorageJob')]
        [string[]]
        $ClassName = $script:HvJobClasses
    )

    $seen = if ($PSBoundParameters.ContainsKey('ClassName')) { $null } else { Get-HvEndedCimJob -InstanceId $InstanceId }
    if ($null -ne $seen) {
        return $seen
    }
    $failure = $null
    foreach ($class in $ClassName) {
        $key = New-CimInstance -Namespace $script:HvNamespace -ClassName $class -Key InstanceID -Property @{
            InstanceID = $InstanceId
        } -ClientOnly
        try {
            return Get-CimInstance -InputObject $key -ErrorAction Stop
        }
        catch [Microsoft.Management.Infrastructure.CimException] {
            if ($null -eq $failure -and $_.Exception.NativeErrorCode -ne [Microsoft.Management.Infrastructure.NativeErrorCode]::NotFound) {
                $failure = $_
            }
        }
    }
    if ($null -ne $failure) {
        throw $failure
    }
}

Function Get-HvEndedCimJob {
    <#
    .SYNOPSIS
    Returns the job as this module run saw it end, when it saw that less than a minute ago; nothing otherwise.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
    param (
        [Parameter(Mandatory)]
        [string]
        $InstanceId
    )

    if ($script:HvEndedJobs.ContainsKey($InstanceId)) {
        $seen = $script:HvEndedJobs[$InstanceId]
        if (([DateTime]::UtcNow - $seen.Seen).TotalSeconds -lt $script:HvEndedJobTrustSeconds) {
            return $seen.Job
        }
    }
}

Function Test-HvCimJobFinished {
    <#
    .SYNOPSIS
    Returns whether a job has reached a final state: 7 completed, 8 terminated, 9 killed,
    10 exception, or 32768 (completed with warnings in Microsoft's samples).

    .DESCRIPTION
    Not "7 and up": 11 Service and 12 Query Pending come after 10 in the list of states but are
    not final (CIM_ConcreteJob: the job is being serviced, or waits for a client to answer a
    query), so a job in them is still waited on, and a timeout reports that state.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job
    )

    [int]$Job.JobState -in @(7, 8, 9, 10, 32768)
}

Function Test-HvCimJobSucceeded {
    <#
    .SYNOPSIS
    Returns whether a job completed without error (7; 32768 is completed with warnings in Microsoft's samples).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job
    )

    [int]$Job.JobState -in @(7, 32768)
}

Function Wait-HvCimJob {
    <#
    .SYNOPSIS
    Returns the job once it has finished or the timeout has passed, whichever comes first.

    .DESCRIPTION
    Waits as Wait-HvAnyCimJob does for a set of one, then reads the job. A timeout of 0 reads
    the job at once. Returns nothing when the job has disappeared from the host.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
    param (
        [Parameter(Mandatory)]
        [string]
        $InstanceId,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $null = Wait-HvAnyCimJob -InstanceId @($InstanceId) -TimeoutSeconds $TimeoutSeconds
    Get-HvCimJob -InstanceId $InstanceId
}

Function Get-HvCimJobSet {
    <#
    .SYNOPSIS
    Returns the jobs of a set by id (an ordered dictionary, in the order given), $null for a job the host no longer has.

    .DESCRIPTION
    One job is read by key. For more, the host's Msvm_ConcreteJob instances are read in one call
    (a poll of a step's 50 jobs is one WMI call, not 50); a job not among them (a Msvm_StorageJob,
    or one the host has forgotten) is then read by key, as Get-HvCimJob reads it.
    #>
    [CmdletBinding()]
    [OutputType([System.Collections.Specialized.OrderedDictionary])]
    param (
        [Parameter(Mandatory)]
        [string[]]
        $InstanceId
    )

    # Ordinal, ignoring case: the id is the host's, and it may come back from the controller.
    $listed = [System.Collections.Generic.Dictionary[string, object]]::new([StringComparer]::OrdinalIgnoreCase)
    if ($InstanceId.Count -gt 1) {
        foreach ($job in @(Get-CimInstance -Namespace $script:HvNamespace -ClassName Msvm_ConcreteJob)) {
            $listed[[string]$job.InstanceID] = $job
        }
    }
    # Not listed: a storage job, or one the host has forgotten; the listing answered for Msvm_ConcreteJob.
    $others = if ($InstanceId.Count -gt 1) { @('Msvm_StorageJob') } else { $script:HvJobClasses }
    $jobs = [ordered]@{}
    foreach ($id in $InstanceId) {
        $jobs[$id] = if ($listed.ContainsKey($id)) { $listed[$id] } else { Get-HvCimJob -InstanceId $id -ClassName $others }
    }
    , $jobs
}

Function Wait-HvAnyCimJob {
    <#
    .SYNOPSIS
    Returns the ids of the jobs of a set that have ended (or disappeared), once at least one has or the timeout passed.

    .DESCRIPTION
    The jobs of many VMs run side by side on the host; waiting on them together lets each VM's
    work go on as soon as its own job ends. Polls with a growing interval (0.25 s up to 2 s) so
    short jobs return quickly and long ones cost few queries; a timeout of 0 reads them once.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string[]]
        $InstanceId,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    $interval = 250
    while ($true) {
        $jobs = Get-HvCimJobSet -InstanceId $InstanceId
        $ended = @(foreach ($id in $jobs.Keys) {
                if ($null -eq $jobs[$id]) {
                    $id
                }
                elseif (Test-HvCimJobFinished -Job $jobs[$id]) {
                    $script:HvEndedJobs[$id] = @{ Job = $jobs[$id]; Seen = [DateTime]::UtcNow }
                    $id
                }
            })
        $left = ($deadline - [DateTime]::UtcNow).TotalMilliseconds
        if ($ended.Count -gt 0 -or $left -le 0) {
            return $ended
        }
        Start-Sleep -Milliseconds ([Math]::Min($interval, [int]$left))
        $interval = [Math]::Min($interval * 2, 2000)
    }
}

Function Get-HvCimJobError {
    <#
    .SYNOPSIS
    Returns the detailed error texts of a job from GetErrorEx, oldest first.

    .DESCRIPTION
    Each entry of Errors is an embedded Msvm_Error; its Message is the text an admin needs.
    A job that cannot explain itself returns nothing rather than hiding the original failure.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job
    )

    try {
        $output = Invoke-CimMethod -InputObject $Job -MethodName GetErrorEx -Arguments @{} -ErrorAction Stop
    }
    catch {
        return
    }
    if ($output.ReturnValue -ne 0 -or $null -eq $output.Errors) {
        return
    }
    foreach ($text in $output.Errors) {
        $errorInstance = ConvertFrom-HvEmbeddedInstance -Text $text
        if ($errorInstance.ContainsKey('Message') -and $errorInstance.Message) {
            $errorInstance.Message
        }
    }
}

Function Get-HvJobClassValue {
    <#
    .SYNOPSIS
    Returns a property that Msvm_ConcreteJob and Msvm_StorageJob declare and CIM_ConcreteJob does not (Cancellable, JobType), or $null.

    .DESCRIPTION
    Read by name: a job is typed by the class both derive from, which lacks these properties.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [ValidateSet('Cancellable', 'JobType')]
        [string]
        $Name
    )

    $property = $Job.PSObject.Properties[$Name]
    if ($null -ne $property) {
        $property.Value
    }
}

Function ConvertTo-HvJobResult {
    <#
    .SYNOPSIS
    Returns the job as the modules report it (the 'job' return value).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job
    )

    $stateCode = [int]$Job.JobState
    $stateName = $script:HvJobStateName[$stateCode]
    if ($null -eq $stateName) {
        $stateName = 'unknown'
    }
    $finished = Test-HvCimJobFinished -Job $Job
    $succeeded = Test-HvCimJobSucceeded -Job $Job
    $errors = @()
    if ($finished -and -not $succeeded) {
        $errors = @(Get-HvCimJobError -Job $Job)
    }
    @{
        id = $Job.InstanceID
        state = $stateName
        state_code = $stateCode
        percent_complete = [int]$Job.PercentComplete
        finished = $finished
        succeeded = $succeeded
        cancellable = [bool](Get-HvJobClassValue -Job $Job -Name Cancellable)
        job_type = [int](Get-HvJobClassValue -Job $Job -Name JobType)
        error_code = [int]$Job.ErrorCode
        error_description = [string]$Job.ErrorDescription
        errors = $errors
    }
}

Function Format-HvJobFailure {
    <#
    .SYNOPSIS
    Returns one sentence describing a failed job, with every error text Hyper-V gave.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $JobResult,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $text = "$Action failed: job $($JobResult.id) ended in state $($JobResult.state) with error code $($JobResult.error_code)"
    if ($JobResult.error_description) {
        $text += ": $($JobResult.error_description)"
    }
    foreach ($detail in $JobResult.errors) {
        if ($detail -ne $JobResult.error_description) {
            $text += " $detail"
        }
    }
    $text
}

Function Get-HvJobProduct {
    <#
    .SYNOPSIS
    Returns what a finished job made, of the given class (CIM_AffectedJobElement).
    #>
    [CmdletBinding()]
    [OutputType([Microsoft.Management.Infrastructure.CimInstance])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [string]
        $ResultClassName
    )

    Get-CimAssociatedInstance -InputObject $Job -Association CIM_AffectedJobElement -ResultClassName $ResultClassName
}

Function Stop-HvCimJob {
    <#
    .SYNOPSIS
    Asks Hyper-V to terminate a running job (RequestStateChange to 4, Terminate).

    .DESCRIPTION
    Throws when the job says it cannot be cancelled or Hyper-V refuses; what the job already
    did stays as Hyper-V leaves it (a terminated checkpoint or export is rolled back by Hyper-V).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
        [object]
        $Job
    )

    if (-not (Get-HvJobClassValue -Job $Job -Name Cancellable)) {
        throw "job $($Job.InstanceID) cannot be cancelled (Cancellable is false); it will run to its end."
    }
    $null = Invoke-HvCimMethod -InputObject $Job -MethodName RequestStateChange -Action "Cancelling job $($Job.InstanceID)" -Arguments @{
        RequestedState = [uint16]4
    }
}

Function Get-HvJobWaitSpec {
    <#
    .SYNOPSIS
    Returns the argument spec of the options with which the controller follows jobs.

    .DESCRIPTION
    The action plugin takes these options out of the task before it runs the module, and reads
    them from the doc fragment hyperv.backup.job_wait; they are declared here too, unused, so that
    the module's argument spec says what its documentation says (validate-modules compares them),
    as ansible.windows' win_updates declares its reboot options.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param ()

    @{
        options = @{
            job_timeout = @{ type = 'int'; default = 3600 }
            cancel_on_job_timeout = @{ type = 'bool'; default = $false }
            connection_retries = @{ type = 'int'; default = 5 }
        }
    }
}

Export-ModuleMember -Function @(
    'ConvertTo-HvJobResult'
    'Format-HvJobFailure'
    'Get-HvCimJob'
    'Get-HvCimJobError'
    'Get-HvCimJobSet'
    'Get-HvFailureReason'
    'Get-HvJobProduct'
    'Get-HvJobWaitSpec'
    'Get-HvReturnCodeMessage'
    'Get-HvService'
    'Invoke-HvCimMethod'
    'Stop-HvCimJob'
    'Test-HvCimJobFinished'
    'Test-HvCimJobSucceeded'
    'Wait-HvAnyCimJob'
    'Wait-HvCimJob'
)
