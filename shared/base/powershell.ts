/**
 * PowerShell text built from values, for the Windows side of the agent and for the controller's
 * commands to Windows nodes. Pure, no dependency: the Linux machines that build and test this code
 * have no PowerShell, so what reaches PowerShell is made only of quoted literals and fixed text,
 * and unit tests pin that text.
 */

/**
 * A PowerShell single-quoted string literal. Inside single quotes PowerShell expands nothing
 * (no `$`, no backtick escapes); a quote is written twice. PowerShell also treats the typographic
 * single quotes (U+2018, U+2019, U+201A, U+201B) as quotes, so they are doubled as well.
 */
export function psQuote(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201A\u201B]/g, (q) => q + q)}'`;
}

/**
 * The argument of `powershell.exe -EncodedCommand`: the script as UTF-16LE, base64. It crosses
 * every layer between (Node's argument quoting for CreateProcess, cmd.exe, SSM) unchanged, since
 * base64 holds no character any of them interprets.
 */
export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

/** Inverse of encodePowerShell (tests). */
export function decodePowerShell(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

/** Words that need no quoting on a PowerShell command line (names, numbers, addresses, base64). */
export const PS_SAFE_WORD = /^[A-Za-z0-9_\-./=:+,]+$/;

/**
 * A word of a PowerShell command line: as is when safe, else single-quoted. A bare `--` is quoted
 * too: Windows PowerShell may take it as its own end-of-parameters token instead of passing it on.
 */
export function psWord(word: string): string {
  return PS_SAFE_WORD.test(word) && word !== '--' ? word : psQuote(word);
}
