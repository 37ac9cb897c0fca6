/** The node agent's entry point (the agent itself comes with the node-agent issue). */
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`failover-agent: not implemented yet (${argv.join(' ')})\n`);
  return 2;
}
