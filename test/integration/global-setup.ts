/**
 * Starts one moto server for all integration tests (or uses AWS_ENDPOINT_URL) and hands its
 * endpoint to the test files. Tests isolate themselves with unique table and resource names, so
 * they can share the server and run in parallel.
 */
import type { TestProject } from 'vitest/node';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from '../../scripts/emulator.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const emulator = await startEmulator({ log: (line: string) => console.log(line) });
  project.provide('awsEndpoint', emulator.endpoint);
  return async () => {
    await emulator.stop();
  };
}
