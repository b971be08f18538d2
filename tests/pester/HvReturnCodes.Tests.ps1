# The return-code matrix of the fault table (docs/reliability.md): every Hyper-V method the
# collection calls, answering each return value its page documents instead of 0 or 4096. Each one
# must fail with the method, the value, its meaning and what to do, and change nothing on the host.
# The end-to-end rows (tests/e2e/test_fault_table.py) take one code per fault class through the
# modules; this runs the whole matrix in one pwsh process.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeDiscovery {
    # 1..6: the generic method values; 32768..32779: the virtualization services' own
    # (shared/spec/hyperv-rct.md, "Return values and jobs", and each method's page).
    $codes = @(1, 2, 3, 4, 5, 6) + (32768..32779)
    $methods = @(
        @{ Method = 'CreateReferencePoint'; Call = { New-HvReferencePoint -VirtualMachine $vm -Type rct -Consistency crash } }
        @{ Method = 'DestroyReferencePoint'; Call = { Remove-HvReferencePoint -ReferencePoint $point } }
        @{ Method = 'CreateSnapshot'; Call = { New-HvRecoveryCheckpoint -VirtualMachine $vm -Consistency crash } }
        @{ Method = 'ModifySystemSettings'; Call = { Set-HvCheckpointTag -Checkpoint $checkpoint -Label 'matrix' } }
        @{ Method = 'DestroySnapshot'; Call = { Remove-HvRecoveryCheckpoint -Checkpoint $checkpoint } }
        @{ Method = 'ConvertToReferencePoint'; Call = { Convert-HvRecoveryCheckpoint -Checkpoint $checkpoint } }
        @{ Method = 'ExportSystemDefinition'; Call = {
                Start-HvExport -VirtualMachine $vm -Checkpoint $checkpoint -Destination 'E:\Backups\web01' -BaseReferencePoint $point
            }
        }
        @{ Method = 'GetVirtualHardDiskSettingData'; Call = { Get-HvVirtualDiskSize -Path $disk } }
        @{ Method = 'GetVirtualHardDiskState'; Call = { Get-HvVirtualDiskFileSize -Path $disk } }
        @{ Method = 'GetVirtualDiskChanges'; Call = { Get-HvVirtualDiskChange -Path $disk -LimitId $point.ResilientChangeTrackingIdentifiers[0] -Size 1GB } }
        @{ Method = 'RequestStateChange'; Call = { Stop-HvCimJob -Job (Get-HvCimJob -InstanceId $hungJob) } }
    )
    $script:cases = foreach ($entry in $methods) {
        @{ Method = $entry.Method; Call = $entry.Call; Codes = @($codes | ForEach-Object { @{ Code = $_ } }) }
    }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvVirtualMachine, _HvCimJob, _HvReferencePoint, _HvCheckpoint, _HvExport, _HvDiskChanges
    $disk = 'D:\Hyper-V\web01\os.vhdx'
    $testHost = Start-HvTestHost -Scenario @{
        host = 'HV12'
        vms = @(
            @{ name = 'web01'; id = '12121212-0000-4000-8000-000000000001'; disks = @(@{ path = $disk; size_gb = 1 }) }
            @{ name = 'web02'; id = '12121212-0000-4000-8000-000000000002' }
        )
    }
    $vm = Get-HvVirtualMachine -Name 'web01'
    $made = New-HvReferencePoint -VirtualMachine $vm -Type rct -Consistency crash
    $null = Wait-HvCimJob -InstanceId $made.Job.InstanceID -TimeoutSeconds 20
    $point = @(Get-HvReferencePoint -VirtualMachine $vm)[0]
    $made = New-HvRecoveryCheckpoint -VirtualMachine $vm -Consistency crash
    $null = Wait-HvCimJob -InstanceId $made.Job.InstanceID -TimeoutSeconds 20
    $checkpoint = @(Get-HvRecoveryCheckpoint -VirtualMachine $vm)[0]
    # A job that runs until cancelled, on the other VM so that web01 stays free for the rest.
    $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body @{
        method = 'CreateReferencePoint'; vm = 'web02'; job = @{ never_ends = $true }
    }
    $hungJob = (New-HvReferencePoint -VirtualMachine (Get-HvVirtualMachine -Name 'web02') -Type rct -Consistency crash).Job.InstanceID

    Function Get-HostState {
        # What a failed call must not change: the reference points, the checkpoints and the jobs' states.
        $state = Invoke-HvTestControl -TestHost $testHost -Path '/sim/state'
        ConvertTo-Json -Depth 10 -InputObject @{
            reference_points = $state.reference_points
            checkpoints = $state.checkpoints
            jobs = @($state.jobs.PSObject.Properties | ForEach-Object { "$($_.Name)=$($_.Value.JobState)" } | Sort-Object)
        }
    }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe '<Method> answering a documented error value' -ForEach $script:cases {
    It 'fails with <Code>, its meaning and what to do, and changes nothing' -ForEach $Codes {
        $before = Get-HostState
        $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body @{ method = $Method; return_value = $Code }
        $expected = Get-HvReturnCodeMessage -ReturnValue $Code
        $expected | Should -Not -BeLike '*undocumented*'
        $message = try { & $Call; 'no error' } catch { $_.Exception.Message }
        $message | Should -BeLike "* failed: $Method $([WildcardPattern]::Escape($expected))*"
        Get-HostState | Should -Be $before
    }
}
