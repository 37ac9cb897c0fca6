/**
 * What an acceptance run created, in order, with how to remove each: the run removes everything in
 * reverse order at its end (also after a failure), and prints what it created and what, if
 * anything, it could not remove (with the id, so that the user can remove it by hand).
 */

/** One resource the run created. */
export interface CreatedResource {
  /** e.g. "VPC", "instance", "IAM role", "stack". */
  kind: string;
  id: string;
  /** Extra words for the printout (zone, type, name). */
  detail?: string;
}

/** The outcome of removing everything. */
export interface Teardown {
  removed: CreatedResource[];
  /** Left behind: the error says why; the resource must be removed by hand. */
  failed: { resource: CreatedResource; error: string }[];
}

export class Ledger {
  readonly created: CreatedResource[] = [];
  private readonly undo: { resource: CreatedResource; remove: () => Promise<void> }[] = [];

  constructor(private readonly say: (line: string) => void) {}

  /** Records a created resource and how to remove it (run in reverse order of creation). */
  add(resource: CreatedResource, remove: () => Promise<void>): void {
    this.created.push(resource);
    this.undo.push({ resource, remove });
    this.say(`  created ${describe(resource)}`);
  }

  /**
   * Removes everything, newest first. A removal that fails is retried (AWS needs a moment after an
   * instance is gone before its subnet or security group can go), then reported and skipped: the
   * rest is still removed.
   */
  async teardown(attempts = 4, pauseMs = 5000): Promise<Teardown> {
    const result: Teardown = { removed: [], failed: [] };
    while (this.undo.length > 0) {
      const { resource, remove } = this.undo.pop()!;
      let error: string | undefined;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          await remove();
          error = undefined;
          break;
        } catch (e) {
          error = (e as Error).message;
          if (attempt < attempts) await new Promise((r) => setTimeout(r, pauseMs));
        }
      }
      if (error === undefined) {
        result.removed.push(resource);
        this.say(`  removed ${describe(resource)}`);
      } else {
        result.failed.push({ resource, error });
        this.say(`  COULD NOT REMOVE ${describe(resource)}: ${error}`);
      }
    }
    return result;
  }
}

export function describe(r: CreatedResource): string {
  return `${r.kind} ${r.id}${r.detail ? ` (${r.detail})` : ''}`;
}
