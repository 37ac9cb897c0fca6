/** Output streams, environment and clock of a command: a parameter, so that tests can capture and pin them. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Wall clock; a parameter so that tests can pin it. */
  now: () => number;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
  now: () => Date.now(),
};
