# Test tooling: the CIM cmdlets for the Hyper-V simulator (see HvSimCim.psm1). Listing the
# functions here lets PowerShell auto-load the module the first time a module calls one.
@{
    RootModule = 'HvSimCim.psm1'
    ModuleVersion = '1.0.0'
    GUID = '5d0b3c3e-8f57-4d6e-9a3b-0f4c2b7e61a9'
    Author = 'hyperv.backup contributors'
    Description = 'CIM cmdlets that forward to the hyperv.backup Hyper-V simulator (tests only).'
    PowerShellVersion = '7.4'
    FunctionsToExport = @('Get-CimAssociatedInstance', 'Get-CimClass', 'Get-CimInstance', 'Invoke-CimMethod', 'Invoke-HvSimSleep', 'New-CimInstance')
    CmdletsToExport = @()
    VariablesToExport = @()
    # Start-Sleep, only under HVSIM_PWSH_SLOTS (HvSimCim.psm1, Invoke-HvSimSleep).
    AliasesToExport = @('Start-Sleep')
}
