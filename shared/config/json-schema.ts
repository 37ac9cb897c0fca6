/** The JSON Schema of the cluster definition, for editors (YAML language server, VS Code). */
import { z } from 'zod';
import { clusterSchema } from './schema';

export function clusterJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(clusterSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }),
    $id: 'https://github.com/ec2-failover-controller/schema/cluster.schema.json',
    title: 'Failover cluster definition',
    description:
      'Nodes, witnesses and failover groups (resources vip/eip/dns/exec, monitors) of one cluster. Cross-field rules (names that refer to each other, lease vs heartbeat) are checked by `failoverctl validate`.',
  };
}
