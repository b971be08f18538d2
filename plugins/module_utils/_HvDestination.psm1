# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Where backups go: a full local path or a share, reachable and writable by the account the module
# runs as, with room for what a run writes. Checked before anything is made, so a run that cannot
# write never leaves a checkpoint or half an export behind.

Set-StrictMode -Version 2.0

Function Test-HvFullPath {
    <#
    .SYNOPSIS
    Returns whether a path is full: a drive and its root (D:\Backups), a share (\\server\share), or / (POSIX hosts); no part ends in a space or a dot.

    .DESCRIPTION
    A relative path (Backups) or a drive-relative one (D:Backups, \Backups) resolves against the
    folder the module happens to run in on the host: the backup would land where nobody looks.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [string]
        $Path
    )

    # A part ending in a space or a dot (an AWX text field's trailing space) is trimmed by Windows in
    # the last part only: 'D:\Backups \web01' would be another folder than the one checked.
    if ($Path -match '[ .](?=[\\/]|$)' -or $Path -match '^[\\/]{2}[?.][\\/]') {
        return $false
    }
    $Path -match '^[A-Za-z]:[\\/]' -or (Test-HvSharePath -Path $Path) -or
    ([System.IO.Path]::DirectorySeparatorChar -eq '/' -and $Path.StartsWith('/', [StringComparison]::Ordinal))
}

Function Test-HvSharePath {
    <#
    .SYNOPSIS
    Returns whether a path is on a share (\\server\share\...).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [string]
        $Path
    )

    $Path -match '^[\\/]{2}[^\\/]+[\\/][^\\/]+'
}

Function Get-HvNearestFolder {
    <#
    .SYNOPSIS
    Returns the path itself when it is an existing folder, else its nearest existing parent folder, or nothing.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    $current = $Path
    while ($current) {
        if ([System.IO.Directory]::Exists($current)) {
            return $current
        }
        $parent = [System.IO.Path]::GetDirectoryName($current)
        if ([string]::Equals($parent, $current, [StringComparison]::Ordinal)) {
            break
        }
        $current = $parent
    }
}

Function Get-HvWriteFailure {
    <#
    .SYNOPSIS
    Returns why a file cannot be written in a folder (a probe file written and removed), or nothing when it can.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    $probe = [System.IO.Path]::Combine($Folder, ".hyperv.backup-probe-$([guid]::NewGuid().ToString('N'))")
    try {
        [System.IO.File]::WriteAllText($probe, 'hyperv.backup checks it can write here; this file is removed at once.')
    }
    catch {
        $failure = $_.Exception.GetBaseException().Message
        # Created but not written (a share's quota): not left behind, if it can be helped.
        $null = Remove-HvProbe -Probe $probe
        return $failure
    }
    try {
        [System.IO.File]::Delete($probe)
    }
    catch {
        return "a file written there could not be removed: $($_.Exception.GetBaseException().Message)"
    }
}

Function Remove-HvProbe {
    <#
    .SYNOPSIS
    Removes a probe file if it exists; returns whether it is gone.
    #>
    [CmdletBinding(SupportsShouldProcess = $false)]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Probe
    )

    try {
        if ([System.IO.File]::Exists($Probe)) {
            [System.IO.File]::Delete($Probe)
        }
        $true
    }
    catch {
        $false
    }
}

Function Get-HvFreeSpace {
    <#
    .SYNOPSIS
    Returns the free bytes available to this account and the size of the volume holding a folder, or nothing on a share.

    .DESCRIPTION
    DriveInfo answers for local volumes only; a share's free space is the file server's to say,
    and Hyper-V's own error says when it runs out.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    if ((Test-HvSharePath -Path $Folder) -or (Test-HvUnderReparsePoint -Folder $Folder)) {
        return
    }
    $drive = New-Object -TypeName System.IO.DriveInfo -ArgumentList ([System.IO.Path]::GetPathRoot($Folder))
    @{ free_bytes = [long]$drive.AvailableFreeSpace; total_bytes = [long]$drive.TotalSize }
}

Function Test-HvUnderReparsePoint {
    <#
    .SYNOPSIS
    Returns whether a folder or one of its parents (not the root) is a reparse point: a mounted volume, a junction, a link.

    .DESCRIPTION
    C:\ClusterStorage\Volume1 (a Cluster Shared Volume) or a folder a volume is mounted in holds
    another volume than its drive letter's: DriveInfo would answer for the wrong one.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    $root = [System.IO.Path]::GetPathRoot($Folder)
    $current = $Folder
    while ($current -and -not [string]::Equals($current.TrimEnd('\', '/'), $root.TrimEnd('\', '/'), [StringComparison]::OrdinalIgnoreCase)) {
        if (([System.IO.File]::GetAttributes($current) -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) {
            return $true
        }
        $current = [System.IO.Path]::GetDirectoryName($current)
    }
    $false
}

Function Get-HvDestinationState {
    <#
    .SYNOPSIS
    Returns what can be known of a destination before writing to it, and the problem that keeps it from use, if any.

    .DESCRIPTION
    Nothing is created: a destination that does not exist yet is judged by its nearest existing
    parent, where it would be created. A probe file is written there and removed at once, since
    only a write proves the account may write (ACLs, share permissions, the WinRM second hop).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [string]
        $Path,

        # Bytes that must be free there; 0 when the run's size is not known.
        [long]
        $RequiredBytes = 0
    )

    $state = @{
        path = $Path; kind = $null; exists = $false; writable = $false; free_bytes = $null; total_bytes = $null
        required_bytes = $RequiredBytes; usable = $false; problem = $null
    }
    if (-not (Test-HvFullPath -Path $Path)) {
        $state.problem = "'$Path' is not a full path: give a local path with its drive (D:\Backups\Hyper-V) or a share (\\server\share\Hyper-V)."
        return $state
    }
    $state.kind = if (Test-HvSharePath -Path $Path) { 'share' } else { 'local' }
    try {
        $nearest = Get-HvNearestFolder -Path $Path
    }
    catch [System.ArgumentException] {
        # .NET Framework refuses < > | " and control characters in a path (a newline from a survey).
        $state.problem = "'$Path' is not a valid path: $($_.Exception.Message)"
        return $state
    }
    $state.exists = $null -ne $nearest -and [string]::Equals($nearest, $Path, [StringComparison]::Ordinal)
    if ($null -eq $nearest) {
        $state.problem = Get-HvUnreachableText -Path $Path -Kind $state.kind
        return $state
    }
    $failure = Get-HvWriteFailure -Folder $nearest
    if ($null -ne $failure) {
        $state.problem = Get-HvUnwritableText -Path $Path -Folder $nearest -Kind $state.kind -Failure $failure
        return $state
    }
    $state.writable = $true
    $space = Get-HvFreeSpace -Folder $nearest
    if ($null -ne $space) {
        $state.free_bytes = $space.free_bytes
        $state.total_bytes = $space.total_bytes
        if ($space.free_bytes -lt $RequiredBytes) {
            $state.problem = ("'$Path' has $(Format-HvByteCount -Bytes $space.free_bytes) free, and this needs $(Format-HvByteCount -Bytes $RequiredBytes) " +
                '(the disks to copy and the free space margin): free some space, or choose another destination.')
            return $state
        }
    }
    $state.usable = $true
    $state
}

Function Get-HvUnreachableText {
    <#
    .SYNOPSIS
    Returns the problem of a destination none of whose folders exists, said for a drive or a share.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $Kind
    )

    if ($Kind -eq 'share') {
        return ("'$Path' cannot be reached: the share does not exist, or this account cannot see it from the host. " +
            (Get-HvSecondHopText))
    }
    "'$Path' cannot be created: its drive '$([System.IO.Path]::GetPathRoot($Path))' does not exist on the host."
}

Function Get-HvUnwritableText {
    <#
    .SYNOPSIS
    Returns the problem of a destination this account cannot write to, with the second hop named for a share.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [string]
        $Kind,

        [Parameter(Mandatory)]
        [string]
        $Failure
    )

    $user = [System.Environment]::UserName
    $where = if ([string]::Equals($Folder, $Path, [StringComparison]::Ordinal)) { "'$Path'" } else { "'$Folder' (where '$Path' would be created)" }
    $text = "$where is not writable by $user, the account the module runs as: $Failure"
    if ($Kind -eq 'share') {
        return "$text $(Get-HvSecondHopText)"
    }
    "$text Give that account modify rights there, or choose another destination."
}

Function Get-HvSecondHopText {
    <#
    .SYNOPSIS
    Returns what to do when a WinRM session cannot reach a share (docs/awx.md, the second hop).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ()

    'Over WinRM with NTLM or Basic authentication the host cannot pass your credentials on to the file server (the second hop): ' +
    'use CredSSP or Kerberos delegation, give the host computer account rights on the share, or back up to a local path.'
}

Function Format-HvByteCount {
    <#
    .SYNOPSIS
    Returns a byte count for people (GiB with one decimal), with the invariant culture.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [long]
        $Bytes
    )

    ([double]$Bytes / 1073741824).ToString('0.0', [System.Globalization.CultureInfo]::InvariantCulture) + ' GiB'
}

Export-ModuleMember -Function @(
    'Test-HvFullPath'
    'Get-HvDestinationState'
    'Get-HvSecondHopText'
)
