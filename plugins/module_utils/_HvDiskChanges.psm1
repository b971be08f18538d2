# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Changed byte ranges of a virtual disk since an RCT id (GetVirtualDiskChanges). One call may
# process less than it was asked for (ProcessedByteLength), so the disk is walked until the
# whole of it is covered.

#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance

$script:HvNamespace = 'root/virtualization/v2'

# How often a read that Hyper-V answered with a job is asked again, and how long each job is waited on.
$script:HvReadAttempts = 3
$script:HvReadJobWaitSeconds = 60

Function Invoke-HvImageRead {
    <#
    .SYNOPSIS
    Returns the output of an image management read (GetVirtualHardDiskSettingData, GetVirtualHardDiskState, GetVirtualDiskChanges) that carries its answer.

    .DESCRIPTION
    Both methods may answer 4096, a job, instead of 0 (their pages list both), and then their
    out parameters are empty: read as an answer, a disk would have size 0 and no changes, and a
    backup would silently miss every change. Microsoft documents no way to read the answer from
    the job, so the job is waited on and the read asked again; after HvReadAttempts job answers
    the read fails, naming the last job.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [string]
        $MethodName,

        [Parameter(Mandatory)]
        [string]
        $Action,

        [Parameter(Mandatory)]
        [hashtable]
        $Arguments
    )

    $service = Get-HvService -ClassName Msvm_ImageManagementService
    for ($attempt = 1; $attempt -le $script:HvReadAttempts; $attempt++) {
        $output = Invoke-HvCimMethod -InputObject $service -MethodName $MethodName -Action $Action -Arguments $Arguments
        if ($null -eq $output.Job) {
            return $output
        }
        $jobId = $output.Job.InstanceID
        $null = Wait-HvCimJob -InstanceId $jobId -TimeoutSeconds $script:HvReadJobWaitSeconds
    }
    throw ("$Action failed: $MethodName answered with a Hyper-V job (4096, last $jobId) instead of the data $script:HvReadAttempts times, " +
        "and the data cannot be read from a job; retry when the host is less busy.")
}

Function Get-HvVirtualDiskSize {
    <#
    .SYNOPSIS
    Returns a virtual disk's size in bytes (MaxInternalSize of its setting data).
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    Read-HvVirtualDiskNumber -Path $Path -MethodName GetVirtualHardDiskSettingData -Output SettingData -Property MaxInternalSize -What 'virtual disk'
}

Function Get-HvVirtualDiskFileSize {
    <#
    .SYNOPSIS
    Returns the size in bytes of a virtual disk's file (FileSize of its Msvm_VirtualHardDiskState): what a full export copies of it.

    .DESCRIPTION
    Not MaxInternalSize: a dynamic disk of 1 TiB with 40 GiB written exports 40 GiB, and a free
    space check on the larger figure would refuse backups that fit.
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    Read-HvVirtualDiskNumber -Path $Path -MethodName GetVirtualHardDiskState -Output State -Property FileSize -What 'the state of virtual disk'
}

Function Read-HvVirtualDiskNumber {
    <#
    .SYNOPSIS
    Returns one number of the embedded instance an image management read answers for a disk.
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $MethodName,

        # The out parameter holding the embedded instance.
        [Parameter(Mandatory)]
        [string]
        $Output,

        [Parameter(Mandatory)]
        [string]
        $Property,

        # What is read, for the message of a failed read ("Reading <What> '<Path>'").
        [Parameter(Mandatory)]
        [string]
        $What
    )

    $answer = Invoke-HvImageRead -MethodName $MethodName -Action "Reading $What '$Path'" -Arguments @{ Path = $Path }
    $instance = ConvertFrom-HvEmbeddedInstance -Text $answer.$Output
    [long]$instance.$Property
}

Function Get-HvVirtualDiskChange {
    <#
    .SYNOPSIS
    Returns the ranges of a disk changed since an RCT id, as (offset, length) pairs.

    .DESCRIPTION
    Walks the disk from 0 to Size, asking at most ChunkBytes per call (0: the rest of the disk),
    and moves on by what each call says it processed. Throws when the disk cannot be read or
    the RCT id is not valid any more, with the documented meaning of the return value.
    #>
    [CmdletBinding()]
    [OutputType([long[]])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $LimitId,

        [Parameter(Mandatory)]
        [long]
        $Size,

        [long]
        $ChunkBytes = 0
    )

    $offset = [long]0
    while ($offset -lt $Size) {
        $length = $Size - $offset
        if ($ChunkBytes -gt 0 -and $ChunkBytes -lt $length) {
            $length = $ChunkBytes
        }
        $output = Invoke-HvImageRead -MethodName GetVirtualDiskChanges -Action "Reading the changes of '$Path'" -Arguments @{
            Path = $Path
            LimitId = $LimitId
            TargetSnapshotId = ''
            ByteOffset = [uint64]$offset
            ByteLength = [uint64]$length
        }
        $processed = [long]$output.ProcessedByteLength
        if ($processed -le 0) {
            throw "GetVirtualDiskChanges processed nothing of '$Path' at offset $offset; the disk cannot be walked."
        }
        for ($index = 0; $index -lt @($output.ChangedByteOffsets).Count; $index++) {
            , @([long]$output.ChangedByteOffsets[$index], [long]$output.ChangedByteLengths[$index])
        }
        $offset += $processed
    }
}

Export-ModuleMember -Function @(
    'Get-HvVirtualDiskChange'
    'Get-HvVirtualDiskFileSize'
    'Get-HvVirtualDiskSize'
    'Invoke-HvImageRead'
)
