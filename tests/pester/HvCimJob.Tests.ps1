# Calling Hyper-V methods and following their jobs (HvCimJob.psm1), against a simulated host.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvVirtualMachine, _HvCimJob, _HvReferencePoint
    $testHost = Start-HvTestHost -Scenario @{
        host = 'HV08'
        jobs = @{ CreateReferencePoint = @{ duration = 1 } }
        # One VM per job: Hyper-V refuses a second reference point of a VM while one is being made.
        vms = @(1..24 | ForEach-Object { @{ name = "web$('{0:d2}' -f $_)"; id = "4d4d4d4d-0000-4000-8000-0000000000$('{0:d2}' -f $_)" } })
    }
    $vm = Get-HvVirtualMachine -Name 'web01'
    $script:nextVm = 1

    Function Start-TestJob {
        # A CreateReferencePoint job of the next VM; a fault given first shapes it.
        param ([hashtable]$Fault)
        $script:nextVm++
        $name = "web$('{0:d2}' -f $script:nextVm)"
        if ($Fault) {
            $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body (@{ method = 'CreateReferencePoint'; vm = $name } + $Fault)
        }
        (New-HvReferencePoint -VirtualMachine (Get-HvVirtualMachine -Name $name) -Type rct -Consistency crash).Job.InstanceID
    }

    Function Confirm-TestJobEnded {
        # Lets short jobs end and the host see it (its forgetting time runs from there), by a listing
        # of the host's jobs: not by this run's own reads, which would remember the jobs they saw end.
        Start-Sleep -Milliseconds 300
        $null = Get-CimInstance -Namespace 'root/virtualization/v2' -ClassName Msvm_ConcreteJob
    }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe 'Get-HvReturnCodeMessage' {
    It 'explains <Code>' -ForEach @(
        @{ Code = 4; Text = 'returned 4 (Invalid Parameter). Hyper-V rejected an argument; check the options given.' }
        @{ Code = 5; Text = 'returned 5 (Invalid State).*' }
        @{ Code = 32769; Text = 'returned 32769 (Access Denied). Run as a member of Hyper-V Administrators*' }
        @{ Code = 32775; Text = 'returned 32775 (Invalid State).*' }
        @{ Code = 32779; Text = 'returned 32779 (File not found).*' }
        @{ Code = 40000; Text = 'returned 40000 (undocumented value)' }
    ) {
        Get-HvReturnCodeMessage -ReturnValue $Code | Should -BeLike $Text
    }
}

Describe 'Get-HvService' {
    It 'reads each service from the host once in a module run, however many VMs use it' {
        $before = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls |
                Where-Object { $_.op -eq 'enumerate' -and $_.class_name -eq 'Msvm_VirtualSystemSnapshotService' }).Count
        $first = Get-HvService -ClassName Msvm_VirtualSystemSnapshotService
        $second = Get-HvService -ClassName Msvm_VirtualSystemSnapshotService
        $after = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls |
                Where-Object { $_.op -eq 'enumerate' -and $_.class_name -eq 'Msvm_VirtualSystemSnapshotService' }).Count
        $after - $before | Should -Be 1
        [object]::ReferenceEquals($first, $second) | Should -BeTrue
        $first.SystemName | Should -Be 'HV08'
    }

    It 'refuses a class that is not one of the services' {
        { Get-HvService -ClassName Msvm_ComputerSystem } | Should -Throw '*Msvm_ComputerSystem*'
    }
}

Describe 'Invoke-HvCimMethod' {
    It 'returns the result of a started job (4096) with its job reference' {
        $service = Get-HvService -ClassName Msvm_VirtualSystemReferencePointService
        $output = Invoke-HvCimMethod -InputObject $service -MethodName CreateReferencePoint -Action 'Test' -Arguments @{
            AffectedSystem = $vm
            ReferencePointType = [uint16]1
        }
        $output.ReturnValue | Should -Be 4096
        $output.ReturnValue | Should -BeOfType [uint32]
        $output.Job.InstanceID | Should -Match '^[0-9A-F-]{36}$'
        $output.PSTypeNames[0] | Should -Be 'Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemReferencePointService#CreateReferencePoint'
    }

    It 'throws an error return value with what was attempted and what it means' {
        $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body @{ method = 'CreateReferencePoint'; return_value = 32775 }
        { New-HvReferencePoint -VirtualMachine $vm -Type rct -Consistency crash } |
            Should -Throw "Creating a reference point of VM 'web01' failed: CreateReferencePoint returned 32775 (Invalid State).*"
    }
}

Describe 'Following a job' {
    It 'reads a job that the host no longer has as nothing (the CIM error is NotFound)' {
        Get-HvCimJob -InstanceId '00000000-0000-4000-8000-000000000000' | Should -BeNullOrEmpty
    }

    It 'reads a job of the image management service, which Hyper-V keeps as a Msvm_StorageJob, not a Msvm_ConcreteJob' {
        $disk = @(Get-HvVirtualMachineDrive -Setting (Get-HvVirtualMachineSetting -VirtualMachine $vm))[0].path
        $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body @{ method = 'GetVirtualHardDiskState'; answer = 'job' }
        $output = Invoke-HvCimMethod -InputObject (Get-HvService -ClassName Msvm_ImageManagementService) -MethodName GetVirtualHardDiskState `
            -Action 'Test' -Arguments @{ Path = $disk }
        $output.ReturnValue | Should -Be 4096
        $job = Wait-HvCimJob -InstanceId $output.Job.InstanceID -TimeoutSeconds 20
        $job.PSTypeNames[0] | Should -Be 'Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_StorageJob'
        (ConvertTo-HvJobResult -Job $job).state | Should -Be 'completed'
        Wait-HvAnyCimJob -InstanceId @($output.Job.InstanceID) -TimeoutSeconds 0 | Should -Be $output.Job.InstanceID
    }

    It 'waits until the job ends and reports it completed' {
        $id = Start-TestJob
        $job = Wait-HvCimJob -InstanceId $id -TimeoutSeconds 20
        $result = ConvertTo-HvJobResult -Job $job
        $result.state | Should -Be 'completed'
        $result.succeeded | Should -BeTrue
        $result.percent_complete | Should -Be 100
        $result.job_type | Should -Be 201
    }

    It 'returns a running job at once with a timeout of 0' {
        $id = Start-TestJob -Fault @{ job = @{ duration = 30 } }
        $result = ConvertTo-HvJobResult -Job (Wait-HvCimJob -InstanceId $id -TimeoutSeconds 0)
        $result.finished | Should -BeFalse
        $result.state | Should -Be 'running'
    }

    It 'gives every error text of a failed job in one sentence' {
        $fail = @{
            error_code = 32768
            description = 'Checkpoint operation failed.'
            errors = @('Checkpoint operation failed.', 'The guest did not answer (0x80070002).')
        }
        $id = Start-TestJob -Fault @{ job = @{ duration = 0.2; fail = $fail } }
        $result = ConvertTo-HvJobResult -Job (Wait-HvCimJob -InstanceId $id -TimeoutSeconds 20)
        $result.state | Should -Be 'exception'
        $result.errors | Should -Be @('Checkpoint operation failed.', 'The guest did not answer (0x80070002).')
        Format-HvJobFailure -JobResult $result -Action 'Making it' |
            Should -Be ("Making it failed: job $id ended in state exception with error code 32768: Checkpoint operation failed. " +
                "The guest did not answer (0x80070002).")
    }

    It 'returns the first of several jobs to end' {
        $slow = Start-TestJob -Fault @{ job = @{ duration = 30 } }
        $fast = Start-TestJob -Fault @{ job = @{ duration = 0.5 } }
        @(Wait-HvAnyCimJob -InstanceId @($slow, $fast) -TimeoutSeconds 20) | Should -Be @($fast)
    }

    It 'polls many jobs with one read of the host''s jobs, reading by key as storage jobs only those not listed' {
        $running = @(1..3 | ForEach-Object { Start-TestJob -Fault @{ job = @{ duration = 30 } } })
        $forgotten = Start-TestJob -Fault @{ job = @{ duration = 0.1; vanish_after = 0.2 } }
        Confirm-TestJobEnded
        $disk = @(Get-HvVirtualMachineDrive -Setting (Get-HvVirtualMachineSetting -VirtualMachine $vm))[0].path
        $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body @{ method = 'GetVirtualHardDiskState'; answer = 'job' }
        $storage = (Invoke-HvCimMethod -InputObject (Get-HvService -ClassName Msvm_ImageManagementService) -MethodName GetVirtualHardDiskState `
                -Action 'Test' -Arguments @{ Path = $disk }).Job.InstanceID
        Start-Sleep -Seconds 1
        $calls = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls).Count
        # The host's ids in lower case, as a controller may hand them back.
        $ended = @(Wait-HvAnyCimJob -InstanceId (@($running) + @($forgotten.ToLowerInvariant(), $storage)) -TimeoutSeconds 0)
        $made = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls | Select-Object -Skip $calls |
                Where-Object { $_.op -in @('enumerate', 'get') })
        $ended | Should -Be @($forgotten.ToLowerInvariant(), $storage)
        @($made | ForEach-Object { "$($_.op) $($_.class_name)" }) | Should -Be @(
            'enumerate Msvm_ConcreteJob'
            # Not listed: the forgotten job and the storage job, asked as storage jobs only.
            'get Msvm_StorageJob', 'get Msvm_StorageJob')
    }

    It 'keeps waiting on a job in <Name> (<State>), which is not final, and says which state it is in' -ForEach @(
        @{ State = 5; Name = 'suspended' }
        @{ State = 6; Name = 'shutting_down' }
        @{ State = 11; Name = 'service' }
        @{ State = 12; Name = 'query_pending' }
    ) {
        $id = Start-TestJob -Fault @{ job = @{ duration = 60; states = @(, @(0, $State)) } }
        $started = [DateTime]::UtcNow
        $result = ConvertTo-HvJobResult -Job (Wait-HvCimJob -InstanceId $id -TimeoutSeconds 2)
        ([DateTime]::UtcNow - $started).TotalSeconds | Should -BeGreaterOrEqual 1.5
        $result.finished | Should -BeFalse
        $result.state | Should -Be $Name
    }

    It 'reports a job that ended in <Name> (<State>) as finished, succeeded <Succeeded>' -ForEach @(
        @{ State = 9; Name = 'killed'; Succeeded = $false }
        @{ State = 32768; Name = 'completed_with_warnings'; Succeeded = $true }
    ) {
        $id = Start-TestJob -Fault @{ job = @{ duration = 0.2; final = $State } }
        $result = ConvertTo-HvJobResult -Job (Wait-HvCimJob -InstanceId $id -TimeoutSeconds 20)
        $result.finished | Should -BeTrue
        $result.state | Should -Be $Name
        $result.succeeded | Should -Be $Succeeded
    }

    It 'reads a job the host forgot after its removal time as nothing' {
        $id = Start-TestJob -Fault @{ job = @{ duration = 0.1; vanish_after = 0.5 } }
        Confirm-TestJobEnded
        Start-Sleep -Seconds 1
        Get-HvCimJob -InstanceId $id | Should -BeNullOrEmpty
    }

    It 'reads a job it saw end from what it saw for a minute, not from the host again, even once the host forgot it' {
        $id = Start-TestJob -Fault @{ job = @{ duration = 0.2; vanish_after = 0.5 } }
        $running = Start-TestJob -Fault @{ job = @{ duration = 30 } }
        @(Wait-HvAnyCimJob -InstanceId @($id, $running) -TimeoutSeconds 20) | Should -Be @($id)
        $calls = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls).Count
        (ConvertTo-HvJobResult -Job (Get-HvCimJob -InstanceId $id.ToLowerInvariant())).state | Should -Be 'completed'
        @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls).Count | Should -Be $calls
        Start-Sleep -Seconds 1
        (ConvertTo-HvJobResult -Job (Get-HvCimJob -InstanceId $id)).state | Should -Be 'completed'
        # A job still running is read from the host each time.
        $null = Get-HvCimJob -InstanceId $running
        @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls).Count | Should -Be ($calls + 1)
        # Past the minute it trusts what it saw, it asks the host, which has forgotten the job.
        # The copy of _HvCimJob whose Get-HvCimJob the tests call (the suite loads it more than once).
        $cimJob = (Get-Command -Name Get-HvCimJob).Module
        & $cimJob { $script:HvEndedJobTrustSeconds = 0 }
        try {
            Get-HvCimJob -InstanceId $id | Should -BeNullOrEmpty
        }
        finally {
            & $cimJob { $script:HvEndedJobTrustSeconds = 60 }
        }
    }

    It 'cancels a running job, and refuses one that cannot be cancelled' {
        $id = Start-TestJob -Fault @{ job = @{ duration = 30 } }
        Stop-HvCimJob -Job (Get-HvCimJob -InstanceId $id)
        (ConvertTo-HvJobResult -Job (Get-HvCimJob -InstanceId $id)).state | Should -Be 'terminated'
        $stuck = Start-TestJob -Fault @{ job = @{ duration = 30; cancellable = $false } }
        { Stop-HvCimJob -Job (Get-HvCimJob -InstanceId $stuck) } | Should -Throw "job $stuck cannot be cancelled (Cancellable is false)*"
    }
}
