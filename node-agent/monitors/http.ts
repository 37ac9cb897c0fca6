import { httpRequest } from '../http-request';
import { errorText } from '../log';
import { fail, ok, type Probe } from './probe';

/** An HTTP(S) request answered with the expected status (redirects are not followed). */
export function httpProbe(url: string, method: string, expectStatus: number): Probe {
  return async (signal, timeoutMs) => {
    try {
      const res = await httpRequest(url, { method, timeoutMs, signal, maxBody: 256 });
      if (res.status === expectStatus) return ok(`${method} ${url}: ${res.status}`);
      return fail(`${method} ${url}: HTTP ${res.status}, expected ${expectStatus}`);
    } catch (e) {
      return fail(`${method} ${url}: ${errorText(e)}`);
    }
  };
}
