# The driver that runs a module's step for one VM or many and ends the module (_HvBatch.psm1).

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidUsingEmptyCatchBlock', '',
    Justification = 'Invoke-QuietStep swallows an error on purpose: the driver must notice')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvBatch, _HvReferencePoint
    $testHost = Start-HvTestHost -Scenario @{
        host = 'HV10'
        jobs = @{ CreateReferencePoint = @{ duration = 1 } }
        vms = @(
            @{ name = 'web01'; id = '5e5e5e5e-0000-4000-8000-000000000001' }
            @{ name = 'web02'; id = '5e5e5e5e-0000-4000-8000-000000000002' }
        )
    }
    $spec = @{
        options = @{
            wait_timeout = @{ type = 'int'; default = 30 }
            vms = Get-HvVmsSpec -Option @{ label = @{ type = 'str' } }
        }
        supports_check_mode = $true
    }
    $fragments = @(Get-HvBatchSpec)

    Function Invoke-Batch {
        # Runs the driver with a step function and task arguments; returns the module's result.
        param ([string]$Step, [hashtable]$Arguments, [string[]]$DistinctBy = @())
        Invoke-HvTestModule -Spec $spec -Fragments $fragments -Arguments $Arguments -Body {
            param ($module)
            Invoke-HvVmBatch -Module $module -Step (Get-Command -Name $Step) -Subject { 'Test work' } -DistinctBy $DistinctBy
        }
    }

    Function Invoke-QuietStep {
        # A step whose error an empty catch swallowed: it returns nothing.
        param ($Params, $VirtualMachine, $AnsibleModule, $Result)
        try {
            throw 'the real problem'
        }
        catch {
        }
    }

    Function Invoke-BrokenStep {
        # A step that changed something, then met an error nobody words.
        param ($Params, $VirtualMachine, $AnsibleModule, $Result)
        $Result.changed = $true
        $null = [int]'twelve'
        $Result
    }

    Function Invoke-RefusingStep {
        # A step that fails as steps fail: with its own words.
        param ($Params, $VirtualMachine, $AnsibleModule, $Result)
        throw (New-HvStepFailure -Message "Test work of VM '$($Result.vm.name)' refused: no.")
    }

    Function Invoke-SlowJobStep {
        # Invoke-JobStep on a busy host, where starting a VM's job takes seconds.
        param ($Params, $VirtualMachine, $AnsibleModule, $Result)
        if (-not $Params._job_id) {
            Start-Sleep -Seconds 3
        }
        Invoke-JobStep -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result
    }

    Function Invoke-SlowRerunStep {
        # Invoke-JobStep on a busy host, where the work on an ended job (tagging, recording) takes seconds.
        param ($Params, $VirtualMachine, $AnsibleModule, $Result)
        if ($Params._job_id) {
            Start-Sleep -Seconds 3
        }
        Invoke-JobStep -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result
    }

    Function Invoke-JobStep {
        # A step that starts a reference point's job, and reads it when run again with the job's id.
        param ($Params, $VirtualMachine, $AnsibleModule, $Result)
        $Result.pending = $false
        $Result.runs = 1
        if ($Params._job_id) {
            $Result.runs = $Params._resume.runs + 1
            $Result.job = ConvertTo-HvJobResult -Job (Get-HvCimJob -InstanceId $Params._job_id)
            return $Result
        }
        $output = New-HvReferencePoint -VirtualMachine $VirtualMachine -Type rct -Consistency crash
        $Result.changed = $true
        $Result.pending = $true
        $Result.job = @{ id = $output.Job.InstanceID }
        $Result._resume = @{ changed = $true; runs = 1 }
        $Result
    }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe 'Invoke-HvVmBatch' {
    AfterEach {
        # Hyper-V refuses a second operation on a VM while a job runs on it: every job a test left
        # running ends before the next test starts.
        $deadline = [DateTime]::UtcNow.AddSeconds(20)
        do {
            $jobs = (Invoke-HvTestControl -TestHost $testHost -Path '/sim/state').jobs.PSObject.Properties.Value
            $running = @($jobs | Where-Object { $null -ne $_ -and $_.JobState -lt 7 })
            if ($running.Count -gt 0) {
                Start-Sleep -Milliseconds 200
            }
        } while ($running.Count -gt 0 -and [DateTime]::UtcNow -lt $deadline)
    }

    It 'fails a VM whose step returned no result, naming the step' {
        $result = Invoke-Batch -Step Invoke-QuietStep -Arguments @{ vm = 'web01' }
        $result.failed | Should -BeTrue
        $result.msg | Should -BeLike ("Test work of VM 'web01' (5e5e5e5e-0000-4000-8000-000000000001): " +
            "the step Invoke-QuietStep returned 0 values instead of its result*")
        $result.vm.id | Should -Be '5e5e5e5e-0000-4000-8000-000000000001'
    }

    It 'keeps what a failed step changed, its exception text and where it happened' {
        $result = Invoke-Batch -Step Invoke-BrokenStep -Arguments @{ vms = @(@{ vm = 'web01' }, @{ vm = 'web02' }) }
        $result.failed | Should -BeTrue
        $result.msg | Should -BeLike ('2 of 2 VMs failed: Test work of VM ''web01'' (5e5e5e5e-0000-4000-8000-000000000001): ' +
            'Cannot convert value "twelve" to type "System.Int32"*')
        $first = $result.results[0]
        $first.changed | Should -BeTrue
        $first.exception | Should -Match 'HvBatch.Tests.ps1'
        $first.exception | Should -Match ([regex]::Escape("[int]'twelve'"))
        $result.changed | Should -BeTrue
    }

    It 'takes a failure in the step''s own words' {
        $result = Invoke-Batch -Step Invoke-RefusingStep -Arguments @{ vm = 'web02' }
        $result.msg | Should -Be "Test work of VM 'web02' refused: no."
        $result.changed | Should -BeFalse
    }

    It 'gives each VM of vms its result in the order given, one unknown or listed twice failing alone' {
        $vms = @(@{ vm = 'web02' }, @{ vm = 'nope' }, @{ vm_id = '5E5E5E5E-0000-4000-8000-000000000002' }, @{ vm = 'web01' })
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = $vms }
        @($result.results | ForEach-Object { $_.failed }) | Should -Be @($false, $true, $true, $false)
        $result.results[1].msg | Should -BeLike "Test work of VM 'nope': No virtual machine named 'nope' on host HV10.*"
        $result.results[2].msg | Should -Be "VM 'web02' (5e5e5e5e-0000-4000-8000-000000000002) is listed more than once in vms."
        $result.msg | Should -BeLike '2 of 4 VMs failed: *'
    }

    It 'waits on the jobs together and runs each VM''s step again with its job and what it asked back' {
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = @(@{ vm = 'web01' }, @{ vm = 'web02' }); wait_timeout = 20 }
        $result.failed | Should -BeFalse
        @($result.results | ForEach-Object { $_.runs }) | Should -Be @(2, 2)
        @($result.results | ForEach-Object { $_.job.state }) | Should -Be @('completed', 'completed')
        @($result.results | ForEach-Object { $_.changed }) | Should -Be @($true, $true)
        $result.pending | Should -BeFalse
    }

    It 'counts wait_timeout from when every VM''s job has started, not from its own start' {
        # Starting the two jobs takes 6 s; a wait counted from the module's start (2 s) would be
        # over before the second began, and both would be handed to the controller.
        $result = Invoke-Batch -Step Invoke-SlowJobStep -Arguments @{ vms = @(@{ vm = 'web01' }, @{ vm = 'web02' }); wait_timeout = 2 }
        $result.pending | Should -BeFalse
        @($result.results | ForEach-Object { $_.runs }) | Should -Be @(2, 2)
    }

    It 'finishes a job that ended while the step worked past wait_timeout on another, instead of handing it on' {
        # web01's job ends after 1 s and its step works on it for 3 s, past the 3 s wait; web02's
        # job ended meanwhile (2.5 s). Handed on, it would cost a poll and a module run more.
        $null = Invoke-HvTestControl -TestHost $testHost -Path '/sim/faults' -Body @{ method = 'CreateReferencePoint'; vm = 'web02'; job = @{ duration = 2.5 } }
        $result = Invoke-Batch -Step Invoke-SlowRerunStep -Arguments @{ vms = @(@{ vm = 'web01' }, @{ vm = 'web02' }); wait_timeout = 3 }
        $result.pending | Should -BeFalse
        @($result.results | ForEach-Object { $_.runs }) | Should -Be @(2, 2)
    }

    It 'returns the jobs still running at once with a wait_timeout of 0' {
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vm = 'web01'; wait_timeout = 0 }
        $result.pending | Should -BeTrue
        $result._resume.runs | Should -Be 1
        $result.job.id | Should -Not -BeNullOrEmpty
    }

    It 'runs each VM of a rerun with its own entry of _resume, as the action plugin hands them back' {
        $first = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = @(@{ vm = 'web01' }, @{ vm = 'web02' }); wait_timeout = 0 }
        $jobs = @($first.results | ForEach-Object { $_.job.id })
        $resume = @(
            @{ job_id = $jobs[1]; state = @{ changed = $true; runs = 4 } }
            @{ job_id = $jobs[0]; state = @{ changed = $true; runs = 1 } }
        )
        $rerun = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = @(@{ vm = 'web02' }, @{ vm = 'web01' }); _resume = $resume; wait_timeout = 20 }
        @($rerun.results | ForEach-Object { $_.vm.name }) | Should -Be @('web02', 'web01')
        @($rerun.results | ForEach-Object { $_.job.id }) | Should -Be @($jobs[1], $jobs[0])
        @($rerun.results | ForEach-Object { $_.runs }) | Should -Be @(5, 2)
    }

    It 'refuses a _resume that does not hold one entry per VM, before any VM is looked at' {
        $result = Invoke-Batch -Step Invoke-BrokenStep -Arguments @{ vms = @(@{ vm = 'web01' }, @{ vm = 'web02' }); _resume = @(@{ job_id = 'x' }) }
        $result.failed | Should -BeTrue
        $result.msg | Should -BeLike '_resume holds 1 entries for 2 VMs; it is set only by the collection*'
        $result.Contains('results') | Should -BeFalse
        $result.changed | Should -BeFalse
    }

    It 'starts the second work of one VM only once the first one''s job has ended (Hyper-V would answer 32775)' {
        $vms = @(@{ vm = 'web01'; label = 'a' }, @{ vm = 'web01'; label = 'b' }, @{ vm = 'web02'; label = 'a' })
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = $vms; wait_timeout = 20 } -DistinctBy label
        $result.failed | Should -BeFalse
        @($result.results | ForEach-Object { $_.runs }) | Should -Be @(2, 2, 2)
        @($result.results | ForEach-Object { $_.job.id } | Select-Object -Unique).Count | Should -Be 3
    }

    It 'keeps apart two works of one VM whose names differ only in case, as the catalog does' {
        $vms = @(@{ vm = 'web01'; label = 'Nightly' }, @{ vm = 'WEB01'; label = 'nightly' }, @{ vm = 'web01'; label = "night`u{00AD}ly" })
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = $vms; wait_timeout = 20 } -DistinctBy label
        $result.failed | Should -BeFalse
        @($result.results | ForEach-Object { $_.runs }) | Should -Be @(2, 2, 2)
    }

    It 'names the VM as given when an empty vm or vm_id selects none: <Case>' -ForEach @(
        @{ Case = 'empty vm'; Element = @{ vm = '' }; Message = "Test work of VM '': vm is empty: give the VM's display name, or its GUID as vm_id." }
        @{ Case = 'empty vm_id'; Element = @{ vm_id = '' }; Message = "Test work of VM '': vm_id '' is not a GUID.*" }
        @{ Case = 'spaces'; Element = @{ vm = ' web01 ' }; Message = "Test work of VM ' web01 ': No virtual machine named ' web01 ' on host HV10.*" }
    ) {
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = @($Element, @{ vm = 'web02' }); wait_timeout = 20 }
        $result.results[0].failed | Should -BeTrue
        $result.results[0].msg | Should -BeLike $Message
        $result.results[1].failed | Should -BeFalse
    }

    It 'returns the second work of a VM as waiting on the first one''s job, and starts it when run again' {
        $vms = @(@{ vm = 'web02'; label = 'a' }, @{ vm = 'web02'; label = 'b' })
        $first = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = $vms; wait_timeout = 0 } -DistinctBy label
        $first.results[0].pending | Should -BeTrue
        $first.results[1].pending | Should -BeTrue
        $first.results[1].job.id | Should -Be $first.results[0].job.id
        $first.results[1]._resume.deferred | Should -BeTrue
        $null = Wait-HvCimJob -InstanceId $first.results[0].job.id -TimeoutSeconds 20
        $resume = @(foreach ($vmResult in $first.results) { @{ job_id = $vmResult.job.id; state = $vmResult._resume } })
        $second = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vms = $vms; _resume = $resume; wait_timeout = 20 } -DistinctBy label
        $second.failed | Should -BeFalse
        @($second.results | ForEach-Object { $_.runs }) | Should -Be @(2, 2)
        $second.results[1].job.id | Should -Not -Be $first.results[0].job.id
    }

    It 'refuses a negative wait_timeout before any VM is looked at' {
        $result = Invoke-Batch -Step Invoke-JobStep -Arguments @{ vm = 'web01'; wait_timeout = -1 }
        $result.msg | Should -Be 'wait_timeout must be 0 or more seconds, got -1.'
    }
}
