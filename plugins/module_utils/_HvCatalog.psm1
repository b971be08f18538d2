# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The catalog gives reference points the names Hyper-V cannot store. It is a JSON file on
# the host (docs/catalog.md describes the format). Several plays may touch one host at once,
# so changes happen under an exclusive lock file and land by replacing the whole file.

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance

$script:HvCatalogVersion = 1

Function Lock-HvCatalog {
    <#
    .SYNOPSIS
    Returns an open, exclusive handle on '<catalog>.lock'; dispose of it to unlock.

    .DESCRIPTION
    The operating system releases the handle if the process dies, so a crashed run never
    leaves the catalog locked. Waits up to TimeoutSeconds for another run to finish.
    #>
    [CmdletBinding()]
    [OutputType([System.IO.FileStream])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [int]
        $TimeoutSeconds = 60
    )

    $directory = Split-Path -Path $Path -Parent
    if (-not (Test-Path -LiteralPath $directory)) {
        $null = New-Item -Path $directory -ItemType Directory -Force
    }
    $lockPath = "$Path.lock"
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ($true) {
        try {
            return [System.IO.File]::Open($lockPath, 'OpenOrCreate', 'ReadWrite', 'None')
        }
        catch [System.IO.IOException] {
            if ([DateTime]::UtcNow -gt $deadline) {
                throw ("The reference point catalog is locked by another run ('$lockPath' held for over $TimeoutSeconds s). " +
                    "Wait for the other play to finish, then retry.")
            }
            Start-Sleep -Milliseconds 200
        }
    }
}

Function ConvertTo-HvHashtable {
    <#
    .SYNOPSIS
    Returns a copy of a dictionary as a hashtable (one level).

    .DESCRIPTION
    [Ansible.Basic.AnsibleModule]::FromJson returns Dictionary[string, object] objects, not
    hashtables; the catalog's helpers work on hashtables (Clone, [hashtable] parameters).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [System.Collections.IDictionary]
        $Dictionary
    )

    $copy = @{}
    foreach ($key in $Dictionary.Keys) {
        $copy[$key] = $Dictionary[$key]
    }
    $copy
}

Function Invoke-HvSharedFileAccess {
    <#
    .SYNOPSIS
    Returns what a file operation returns, retrying it for a while when another process has the file open.

    .DESCRIPTION
    Windows enforces share modes on every open: while a second run reads the catalog, a replace
    of it fails, and while it is being replaced an open for reading can fail, both with an
    IOException (sharing violation). Both last milliseconds, so the operation is tried again for
    up to about five seconds before the error is let through.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [scriptblock]
        $Operation
    )

    for ($attempt = 1; ; $attempt++) {
        try {
            return & $Operation
        }
        catch [System.IO.IOException] {
            # FileNotFound and DirectoryNotFound are IOExceptions too, and no retry helps them.
            if ($attempt -ge 25 -or $_.Exception -is [System.IO.FileNotFoundException] -or $_.Exception -is [System.IO.DirectoryNotFoundException]) {
                throw
            }
            Start-Sleep -Milliseconds 200
        }
    }
}

Function Read-HvCatalog {
    <#
    .SYNOPSIS
    Returns the catalog as a hashtable; a missing file is an empty catalog.

    .DESCRIPTION
    A file that is not a catalog of a known version throws and is left as it is: replacing it
    would forget the names of every reference point it holds.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
        return @{ version = $script:HvCatalogVersion; entries = [System.Collections.Generic.List[object]]@() }
    }
    $text = Invoke-HvSharedFileAccess -Operation { [System.IO.File]::ReadAllText($Path) }
    $problem = $null
    try {
        $catalog = [Ansible.Basic.AnsibleModule]::FromJson($text)
    }
    catch {
        $problem = "it is not valid JSON ($($_.Exception.Message))"
    }
    if (-not $problem) {
        if ($catalog -isnot [System.Collections.IDictionary] -or -not $catalog.ContainsKey('version') -or -not $catalog.ContainsKey('entries')) {
            $problem = 'it has no version and entries'
        }
        elseif ($catalog['version'] -isnot [int] -and $catalog['version'] -isnot [long]) {
            # -ne converts: the string "1" would pass as version 1.
            $problem = "its version $([Ansible.Basic.AnsibleModule]::ToJson($catalog['version'])) is not a number"
        }
        elseif ($catalog['version'] -ne $script:HvCatalogVersion) {
            $problem = "its version $($catalog['version']) is not the supported version $script:HvCatalogVersion"
        }
        elseif ($catalog['entries'] -isnot [System.Collections.IList]) {
            $problem = 'its entries are not a list'
        }
        elseif (@($catalog['entries'] | Where-Object { $_ -isnot [System.Collections.IDictionary] }).Count -gt 0) {
            $problem = 'some entries are not objects'
        }
    }
    if ($problem) {
        throw ("The reference point catalog '$Path' is corrupt: $problem. It was left unchanged; " +
            "restore it from a backup or move it aside (Hyper-V's reference points are not affected, only their names).")
    }
    $entries = [System.Collections.Generic.List[object]]@()
    foreach ($entry in $catalog['entries']) {
        $entries.Add((ConvertTo-HvHashtable -Dictionary $entry))
    }
    @{ version = $script:HvCatalogVersion; entries = $entries }
}

Function Save-HvCatalog {
    <#
    .SYNOPSIS
    Writes the catalog atomically: a temporary file beside it, then a replace.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [hashtable]
        $Catalog
    )

    $temporary = "$Path.tmp"
    [System.IO.File]::WriteAllText($temporary, [Ansible.Basic.AnsibleModule]::ToJson($Catalog))
    if (Test-Path -LiteralPath $Path -PathType Leaf) {
        # [NullString]::Value: PowerShell passes $null to a string parameter as '', which
        # File.Replace refuses as a backup path; NullString passes a real null (no backup).
        Invoke-HvSharedFileAccess -Operation { [System.IO.File]::Replace($temporary, $Path, [NullString]::Value) }
    }
    else {
        [System.IO.File]::Move($temporary, $Path)
    }
}

Function Update-HvCatalog {
    <#
    .SYNOPSIS
    Runs a change on the catalog under its lock and saves it; returns what the change returns.

    .DESCRIPTION
    Change is a script block that takes the catalog (a hashtable) and changes it in place. The
    lock is held from the read to the save, so a change decided on what the catalog holds cannot
    interleave with another run's.
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

Function Find-HvCatalogEntry {
    <#
    .SYNOPSIS
    Returns the catalog entries of a VM with a given name, or with a given reference point id.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Catalog,

        [Parameter(Mandatory, ParameterSetName = 'Name')]
        [string]
        $VmId,

        [Parameter(Mandatory, ParameterSetName = 'Name')]
        [string]
        $Name,

        [Parameter(Mandatory, ParameterSetName = 'InstanceId')]
        [string]
        $InstanceId
    )

    foreach ($entry in $Catalog.entries) {
        if ($PSCmdlet.ParameterSetName -eq 'Name') {
            # Ordinal: -ceq compares by culture and takes 'night<SHY>ly' for 'nightly'.
            if ($entry.vm_id -eq $VmId -and [string]::Equals($entry.name, $Name, [StringComparison]::Ordinal)) {
                $entry
            }
        }
        elseif ($entry.instance_id -and [string]::Equals($entry.instance_id, $InstanceId, [StringComparison]::Ordinal)) {
            $entry
        }
    }
}

Function Set-HvCatalogEntry {
    <#
    .SYNOPSIS
    Puts an entry in the catalog in place of any entry with the same VM and name.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Catalog,

        [Parameter(Mandatory)]
        [hashtable]
        $Entry
    )

    $null = Remove-HvCatalogEntry -Catalog $Catalog -VmId $Entry.vm_id -Name $Entry.name
    $Catalog.entries.Add($Entry)
}

Function Remove-HvCatalogEntry {
    <#
    .SYNOPSIS
    Removes the entries of a VM with a given name from the catalog; returns how many went.
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Catalog,

        [Parameter(Mandatory)]
        [string]
        $VmId,

        [Parameter(Mandatory)]
        [string]
        $Name
    )

    $Catalog.entries.RemoveAll({ param($entry) $entry.vm_id -eq $VmId -and [string]::Equals($entry.name, $Name, [StringComparison]::Ordinal) })
}

Function New-HvCatalogEntry {
    <#
    .SYNOPSIS
    Returns a new catalog entry; status is 'pending' until the reference point exists.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $VmIdentity,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [Parameter(Mandatory)]
        [string]
        $Type,

        [Parameter(Mandatory)]
        [string]
        $Consistency,

        [AllowEmptyString()]
        [string]
        $RunId = '',

        # 'full' or 'incremental' when the reference point closes a backup, else empty.
        [AllowEmptyString()]
        [string]
        $Mode = '',

        # The name of the reference point an incremental backup was taken against.
        [AllowEmptyString()]
        [string]
        $Base = '',

        # The VM's reference points before the creation starts: what the job made is found
        # among the others when the job cannot say (Get-HvCreatedReferencePoint).
        [AllowEmptyCollection()]
        [string[]]
        $KnownBefore = @()
    )

    @{
        vm_id = $VmIdentity.id
        vm_name = $VmIdentity.name
        name = $Name
        type = $Type
        consistency = $Consistency
        run_id = $RunId
        created = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
        status = 'pending'
        instance_id = $null
        job_id = $null
        mode = if ($Mode) { $Mode } else { $null }
        base = if ($Base) { $Base } else { $null }
        known_before = @($KnownBefore)
    }
}

Function Get-HvCatalogSpec {
    <#
    .SYNOPSIS
    Returns the argument spec of the catalog option shared by the modules.

    .DESCRIPTION
    Documented by the doc fragment hyperv.backup.catalog; the static check compares both.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param ()

    @{
        options = @{
            catalog_path = @{ type = 'path' }
        }
    }
}

Function Resolve-HvCatalogPath {
    <#
    .SYNOPSIS
    Returns the catalog path a task asked for, or the default one.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $Path
    )

    if ($Path) {
        return $Path
    }
    Join-Path -Path $env:ProgramData -ChildPath 'hyperv.backup\catalog.json'
}

Function Get-HvPendingRecordPath {
    <#
    .SYNOPSIS
    Returns the file beside the catalog that records one kind of job still running (pending-<Kind>.json).

    .DESCRIPTION
    A module records a job there as soon as Hyper-V has started it, and forgets it once it has seen
    the job end. A run whose controller died mid-job leaves the record, so the next run follows that
    job instead of starting a second one. Same format and locking as the catalog.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $CatalogPath,

        [Parameter(Mandatory)]
        [ValidateSet('checkpoints', 'exports')]
        [string]
        $Kind
    )

    Join-Path -Path (Get-HvCatalogFolder -CatalogPath $CatalogPath) -ChildPath "pending-$Kind.json"
}

Function Get-HvCatalogFolder {
    <#
    .SYNOPSIS
    Returns the host's folder of the catalog a task uses, where the files of running work are kept beside it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $CatalogPath
    )

    Split-Path -Path (Resolve-HvCatalogPath -Path $CatalogPath) -Parent
}

Function Get-HvPendingRecord {
    <#
    .SYNOPSIS
    Returns the record of a VM and name in a file of running jobs (Get-HvPendingRecordPath), or nothing.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $VmId,

        [Parameter(Mandatory)]
        [string]
        $Name
    )

    $pending = Read-HvCatalog -Path $Path
    Find-HvCatalogEntry -Catalog $pending -VmId $VmId -Name $Name | Select-Object -First 1
}

Function Set-HvPendingRecord {
    <#
    .SYNOPSIS
    Records a started job for a VM and name (Record given), or forgets it (no Record), in a file of running jobs.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $VmId,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [AllowNull()]
        [hashtable]
        $Record
    )

    if ($null -eq $Record -and ($null -eq (Get-HvPendingRecord -Path $Path -VmId $VmId -Name $Name))) {
        # Nothing to forget: the file is not written (or made) for it.
        return
    }
    $null = Update-HvCatalog -Path $Path -Change {
        param ($pending)
        $null = Remove-HvCatalogEntry -Catalog $pending -VmId $VmId -Name $Name
        if ($null -ne $Record) {
            Set-HvCatalogEntry -Catalog $pending -Entry $Record
        }
    }
}

Export-ModuleMember -Function @(
    'ConvertTo-HvHashtable'
    'Find-HvCatalogEntry'
    'Get-HvCatalogFolder'
    'Get-HvCatalogSpec'
    'Get-HvPendingRecord'
    'Get-HvPendingRecordPath'
    'Resolve-HvCatalogPath'
    'Lock-HvCatalog'
    'New-HvCatalogEntry'
    'Read-HvCatalog'
    'Remove-HvCatalogEntry'
    'Save-HvCatalog'
    'Set-HvCatalogEntry'
    'Set-HvPendingRecord'
    'Update-HvCatalog'
)
