import type { BenchRow, Say } from './report';

export async function runAzOutageBench(_o: { say: Say }): Promise<BenchRow[]> {
  return [];
}
