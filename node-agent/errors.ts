/**
 * Exit codes of `failover-agent` (the daemon) and `failover-agent guard`:
 *
 *   0   success (daemon: clean shutdown after SIGTERM)
 *   1   failure: AWS/DynamoDB error, local state problem, internal error
 *   2   usage: bad flags or arguments
 *   3   guard refused: the group record does not name this node owner at that epoch (stale epoch)
 *       / daemon: cluster, node, table or instance not found
 *   4   guard refused: the local agent holds no live lease (not running, fenced, leaving, expired)
 *   5   guard: the group's lock stayed busy, or the start lost its lock (a self-fence took it)
 *   10  guard: COMMAND itself failed (its exit code or signal is printed)
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  stale: 3,
  notFound: 3,
  noLease: 4,
  busy: 5,
  commandFailed: 10,
} as const;

/** An error that ends a command with a given exit code and a message saying what to do. */
export class AgentError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}
