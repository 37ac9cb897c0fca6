<#
.SYNOPSIS
  Installs or upgrades the failover node agent as a Windows service (WinSW 2.x). Run as
  Administrator or SYSTEM (the SSM install document runs it as SYSTEM):

    .\install.ps1 [-Cluster orders -Node node1] [-Table failover-state] [-Region us-east-1]
                  [-WinSW .\WinSW-x64.exe] [-NodeExe 'C:\Program Files\nodejs\node.exe']

.DESCRIPTION
  It installs
    %ProgramFiles%\failover-agent\failover-agent.mjs   the bundled agent (npm run release:agent)
    %ProgramFiles%\failover-agent\failover-agent.exe   WinSW, the service wrapper, renamed
    %ProgramFiles%\failover-agent\failover-agent.xml   its service definition (restart on failure,
                                                       Ctrl+C and 330 s for the stop scripts on a
                                                       stop and at shutdown)
    %ProgramFiles%\failover-agent\failover-agent.cmd   `failover-agent status`, and the guard that
                                                       the controller's PowerShell commands call
    %ProgramData%\failover-agent\agent.env             identity and options (kept if it exists)
    %ProgramData%\failover-agent                       state shared by the agent and the guard
                                                       (SYSTEM and Administrators only)
  then registers and starts the service. On an upgrade (the service runs) the agent's process is
  killed, not stopped: a stop would stop every group here and fail them over, while the service
  restarts the new agent within seconds and it keeps the groups it still owns. Run again with the
  same bundle while the service runs, it changes nothing.

  Not tested on a real Windows host by the project's CI (see the README's Windows section).
#>
param(
  [string]$Bundle = (Join-Path $PSScriptRoot 'failover-agent.mjs'),
  [string]$WinSW = (Join-Path $PSScriptRoot 'WinSW-x64.exe'),
  [string]$Cluster = '',
  [string]$Node = '',
  [string]$Table = '',
  [string]$Region = '',
  [string]$NodeExe = ''
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

function Fail([string]$Message) {
  [Console]::Error.WriteLine("install.ps1: $Message")
  exit 1
}

$NamePattern = '^[a-z0-9][a-z0-9-]{0,62}$'
if ($Cluster -and $Cluster -notmatch $NamePattern) { Fail "-Cluster '$Cluster' is not a cluster name (lowercase letters, digits, dashes)" }
if ($Node -and $Node -notmatch $NamePattern) { Fail "-Node '$Node' is not a node name (lowercase letters, digits, dashes)" }
if ($Node -and -not $Cluster) { Fail "-Node $Node needs -Cluster NAME (or give neither: the agent finds both from the instance id)" }
if ($Table -and $Table -notmatch '^[A-Za-z0-9_.-]{3,255}$') { Fail "-Table '$Table' is not a DynamoDB table name" }
if ($Region -and $Region -notmatch '^[a-z]{2}(-[a-z]+)+-\d+$') { Fail "-Region '$Region' is not an AWS region such as us-east-1" }

$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  Fail 'run as Administrator (or through the SSM install document, which runs as SYSTEM)'
}
if (-not (Test-Path -LiteralPath $Bundle)) { Fail "no bundle at $Bundle; unpack the Windows release (npm run release:agent) next to install.ps1 or pass -Bundle" }

# Node.js: 22 LTS recommended, 20 still runs.
if (-not $NodeExe) {
  $found = Get-Command node.exe -ErrorAction SilentlyContinue
  $NodeExe = if ($found) { $found.Source } else { Join-Path $env:ProgramFiles 'nodejs\node.exe' }
}
if (-not (Test-Path -LiteralPath $NodeExe)) { Fail "node.exe not found at $NodeExe; install Node.js 22 LTS (the Windows MSI) or pass -NodeExe PATH" }
$major = [int](& $NodeExe -p "process.versions.node.split('.')[0]")
if ($major -lt 20) { Fail "$NodeExe is Node.js $major; the agent needs 20 or later (22 LTS recommended)" }
if ($major -lt 22) { [Console]::Error.WriteLine("install.ps1: $NodeExe is Node.js $major, past its end of life; install Node.js 22 LTS and run install.ps1 again") }

$Dir = Join-Path $env:ProgramFiles 'failover-agent'
$State = Join-Path $env:ProgramData 'failover-agent'
New-Item -ItemType Directory -Force -Path $Dir, $State, (Join-Path $State 'logs') | Out-Null
# State shared by the agent and the guard: SYSTEM and Administrators only (SIDs: any language).
& icacls.exe $State /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' | Out-Null
if ($LASTEXITCODE -ne 0) { Fail "icacls could not restrict $State" }

$service = Get-Service -Name 'failover-agent' -ErrorAction SilentlyContinue
$installed = Join-Path $Dir 'failover-agent.mjs'
if ($service -and $service.Status -eq 'Running' -and (Test-Path -LiteralPath $installed) -and
    (Get-FileHash -LiteralPath $installed).Hash -eq (Get-FileHash -LiteralPath $Bundle).Hash) {
  Write-Output "install.ps1: failover-agent $(& $NodeExe $installed --version) is installed and running; nothing to do"
  exit 0
}

Copy-Item -LiteralPath $Bundle -Destination "$installed.new" -Force
Move-Item -LiteralPath "$installed.new" -Destination $installed -Force
foreach ($extra in @('README.md', 'VERSION')) {
  $src = Join-Path $PSScriptRoot $extra
  if (Test-Path -LiteralPath $src) { Copy-Item -LiteralPath $src -Destination (Join-Path $Dir $extra) -Force }
}
$escaped = [Security.SecurityElement]::Escape($NodeExe)
(Get-Content -Raw -LiteralPath (Join-Path $PSScriptRoot 'failover-agent.xml')).Replace('@NODE_EXE@', $escaped) |
  Set-Content -LiteralPath (Join-Path $Dir 'failover-agent.xml') -Encoding UTF8
(Get-Content -Raw -LiteralPath (Join-Path $PSScriptRoot 'failover-agent.cmd')).Replace('@NODE_EXE@', $NodeExe) |
  Set-Content -LiteralPath (Join-Path $Dir 'failover-agent.cmd') -Encoding ASCII

$wrapper = Join-Path $Dir 'failover-agent.exe'
if (-not (Test-Path -LiteralPath $wrapper)) {
  if (-not (Test-Path -LiteralPath $WinSW)) {
    Fail "WinSW not found at $WinSW: put WinSW-x64.exe (WinSW 2.12, https://github.com/winsw/winsw/releases) in the release with npm run release:agent -- --winsw PATH, or pass -WinSW PATH"
  }
  Copy-Item -LiteralPath $WinSW -Destination $wrapper -Force
} elseif ((Test-Path -LiteralPath $WinSW) -and (Get-FileHash -LiteralPath $WinSW).Hash -ne (Get-FileHash -LiteralPath $wrapper).Hash) {
  if ($service -and $service.Status -eq 'Running') {
    [Console]::Error.WriteLine('install.ps1: a different WinSW comes with this release; it replaces the running one at the next planned service restart (move the groups away first: a service stop fails them over)')
  } else {
    Copy-Item -LiteralPath $WinSW -Destination $wrapper -Force
  }
}

$envFile = Join-Path $State 'agent.env'
if (Test-Path -LiteralPath $envFile) {
  Write-Output "install.ps1: keeping $envFile as it is:"
  Get-Content -LiteralPath $envFile | ForEach-Object { "    $_" }
} else {
  $lines = @(
    '# failover-agent settings (read by the service through --settings).',
    '# Without FAILOVER_CLUSTER/FAILOVER_NODE the node is found from the instance id (IMDSv2).',
    $(if ($Region) { "AWS_REGION=$Region" } else { '#AWS_REGION=us-east-1   (default: the instance''s region, from IMDS)' }),
    $(if ($Table) { "FAILOVER_TABLE=$Table" } else { '#FAILOVER_TABLE=failover-state' }),
    $(if ($Cluster) { "FAILOVER_CLUSTER=$Cluster" } else { '#FAILOVER_CLUSTER=orders' }),
    $(if ($Node) { "FAILOVER_NODE=$Node" } else { '#FAILOVER_NODE=node1' }),
    '#FAILOVER_AGENT_VIP_DEV=Ethernet   (default: the interface of the default route)',
    '#FAILOVER_AGENT_LOG_LEVEL=info'
  )
  Set-Content -LiteralPath $envFile -Value $lines -Encoding ASCII
}

if (-not $service) {
  & $wrapper install
  if ($LASTEXITCODE -ne 0) { Fail "WinSW could not register the service (exit $LASTEXITCODE)" }
  Start-Service -Name 'failover-agent'
  Write-Output "install.ps1: failover-agent registered and started; logs in $State\logs, status: & '$Dir\failover-agent.cmd' status"
} elseif ($service.Status -eq 'Running') {
  # Upgrade without a failover: kill the agent's process; the service's recovery restarts it.
  & $wrapper refresh | Out-Null
  $lease = Join-Path $State 'agent.json'
  if (Test-Path -LiteralPath $lease) {
    $agentPid = (Get-Content -Raw -LiteralPath $lease | ConvertFrom-Json).pid
    Stop-Process -Id $agentPid -Force -ErrorAction SilentlyContinue
  }
  Write-Output 'install.ps1: upgraded; the agent restarts with the new version and keeps the groups it owns'
} else {
  & $wrapper refresh | Out-Null
  Start-Service -Name 'failover-agent'
  Write-Output 'install.ps1: failover-agent started'
}
