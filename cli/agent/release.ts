/**
 * What `failoverctl agent ...` knows of an agent release: its version and the SHA-256 sums of its
 * two archives, from the manifest.json that `npm run release:agent` writes, or from flags. The sums
 * the install document checks come from here (the operator's build), never from the bucket.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidRequestError } from '../../shared/base/errors';

/** A release as the install document needs it. */
export interface AgentRelease {
  version: string;
  sha256Linux: string;
  sha256Windows: string;
}

export const VERSION_PATTERN = /^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** Archive names of a release, as the release script writes them and the install document reads them. */
export function releaseFiles(version: string): { linux: string; windows: string; keyPrefix: string } {
  return {
    linux: `failover-agent-${version}-linux.tar.gz`,
    windows: `failover-agent-${version}-windows.zip`,
    keyPrefix: `agent/${version}/`,
  };
}

/** The release from flags, else from `<release>/manifest.json` (default dist/release/<cli version>). */
export async function loadRelease(options: {
  release?: string;
  version?: string;
  sha256Linux?: string;
  sha256Windows?: string;
  defaultDir: string;
}): Promise<AgentRelease> {
  if (options.version || options.sha256Linux || options.sha256Windows) {
    const { version, sha256Linux, sha256Windows } = options;
    if (!version || !sha256Linux || !sha256Windows)
      throw new InvalidRequestError(
        '--version, --sha256-linux and --sha256-windows go together (the sums are in the release manifest.json); or pass --release DIR',
      );
    return checkRelease({ version, sha256Linux, sha256Windows }, 'flags');
  }
  const dir = options.release ?? options.defaultDir;
  const file = path.join(dir, 'manifest.json');
  let manifest: { version?: unknown; linux?: { sha256?: unknown }; windows?: { sha256?: unknown } };
  try {
    manifest = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new InvalidRequestError(
      `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): build the release with "npm run release:agent", or pass --release DIR, or --version with --sha256-linux and --sha256-windows`,
    );
  }
  return checkRelease(
    {
      version: String(manifest.version ?? ''),
      sha256Linux: String(manifest.linux?.sha256 ?? ''),
      sha256Windows: String(manifest.windows?.sha256 ?? ''),
    },
    file,
  );
}

function checkRelease(r: AgentRelease, source: string): AgentRelease {
  if (!VERSION_PATTERN.test(r.version))
    throw new InvalidRequestError(`${source}: version "${r.version}" is not a release version such as 0.1.0`);
  for (const [k, v] of [
    ['sha256-linux', r.sha256Linux],
    ['sha256-windows', r.sha256Windows],
  ] as const) {
    if (!SHA256.test(v))
      throw new InvalidRequestError(`${source}: ${k} "${v}" is not a SHA-256 (64 lowercase hex digits)`);
  }
  return r;
}

/**
 * The install document of the deployment whose table this is: `failover-agent-install-<stage>` for
 * the table `failover-state-<stage>` (serverless.yml); undefined when the table is named otherwise.
 */
export function installDocumentFor(table: string): string | undefined {
  const m = /^failover-state-(.+)$/.exec(table);
  return m ? `failover-agent-install-${m[1]}` : undefined;
}
