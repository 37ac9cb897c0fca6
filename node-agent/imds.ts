/**
 * EC2 instance metadata, IMDSv2 only: a session token from PUT /latest/api/token, cached for hours
 * (one token per few hours, not one per request), then GETs with the token. The base URL comes
 * from AWS_EC2_METADATA_SERVICE_ENDPOINT (the AWS SDK's name), so tests serve it on loopback;
 * AWS_EC2_METADATA_DISABLED=true turns it off.
 */
import { instanceArn } from '../shared/table/keys';
import type { Clock } from './clock';
import { httpRequest } from './http-request';

/** The link-local IMDS address. */
export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
/** Token lifetime asked for: 6 hours, the maximum. */
export const IMDS_TOKEN_TTL_S = 21_600;
/** Renew the token this long before it expires. */
const TOKEN_RENEW_BEFORE_MS = 10 * 60_000;

/** IMDS answered with an unexpected status (or not at all). */
export class ImdsError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** AWS_EC2_METADATA_SERVICE_ENDPOINT, the default, or undefined when AWS_EC2_METADATA_DISABLED=true. */
export function imdsEndpointFromEnv(env: Record<string, string | undefined>): string | undefined {
  if ((env.AWS_EC2_METADATA_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  return (env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? DEFAULT_IMDS_ENDPOINT).replace(/\/+$/, '');
}

/** IMDSv2 client with a cached session token. */
export class Imds {
  private token: { value: string; renewAtMono: number } | undefined;
  private tokenFetch: Promise<string> | undefined;
  /** Tokens fetched so far (for the footprint check and tests). */
  tokensFetched = 0;

  constructor(
    readonly endpoint: string,
    private readonly clock: Clock,
    private readonly timeoutMs = 1000,
    private readonly tokenTtlS = IMDS_TOKEN_TTL_S,
  ) {}

  private async sessionToken(): Promise<string> {
    const now = this.clock.mono();
    if (this.token && now < this.token.renewAtMono) return this.token.value;
    // One fetch at a time even if several pollers ask together.
    this.tokenFetch ??= (async () => {
      try {
        const res = await httpRequest(`${this.endpoint}/latest/api/token`, {
          method: 'PUT',
          headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(this.tokenTtlS) },
          timeoutMs: this.timeoutMs,
        });
        if (res.status !== 200 || !res.body) {
          throw new ImdsError(
            `IMDSv2 token request to ${this.endpoint} answered HTTP ${res.status}; check the instance's metadata options (HttpTokens, HttpPutResponseHopLimit)`,
            res.status,
          );
        }
        this.tokensFetched++;
        const ttlMs = this.tokenTtlS * 1000;
        this.token = {
          value: res.body.trim(),
          renewAtMono: this.clock.mono() + Math.max(ttlMs / 2, ttlMs - TOKEN_RENEW_BEFORE_MS),
        };
        return this.token.value;
      } finally {
        this.tokenFetch = undefined;
      }
    })();
    return this.tokenFetch;
  }

  /** GET a metadata path; 404 resolves to undefined (e.g. no Spot action pending). */
  async get(path: string): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.sessionToken();
      const res = await httpRequest(`${this.endpoint}${path}`, {
        headers: { 'X-aws-ec2-metadata-token': token },
        timeoutMs: this.timeoutMs,
      });
      if (res.status === 200) return res.body;
      if (res.status === 404) return undefined;
      if (res.status === 401 && attempt === 0) {
        this.token = undefined; // expired or revoked: one fresh token, then give up
        continue;
      }
      throw new ImdsError(`IMDS GET ${path} answered HTTP ${res.status}`, res.status);
    }
  }

  async instanceId(): Promise<string> {
    const id = await this.get('/latest/meta-data/instance-id');
    if (!id) throw new ImdsError(`IMDS at ${this.endpoint} has no instance-id`);
    return id.trim();
  }

  /**
   * The instance's ARN, as IAM's `ec2:SourceInstanceARN` names it, from the instance identity
   * document (account, region, instance id).
   */
  async instanceArn(): Promise<string> {
    const doc = await this.get('/latest/dynamic/instance-identity/document');
    let parsed: { accountId?: unknown; region?: unknown; instanceId?: unknown } = {};
    try {
      parsed = JSON.parse(doc ?? '{}');
    } catch {
      // reported below
    }
    const { accountId, region, instanceId } = parsed;
    if (typeof accountId !== 'string' || typeof region !== 'string' || typeof instanceId !== 'string')
      throw new ImdsError(
        `IMDS at ${this.endpoint} has no instance identity document (accountId, region, instanceId)`,
      );
    return instanceArn({ region, account: accountId }, instanceId);
  }

  async region(): Promise<string | undefined> {
    return (await this.get('/latest/meta-data/placement/region'))?.trim();
  }
}
