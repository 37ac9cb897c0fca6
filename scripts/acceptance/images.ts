/**
 * The nodes' image: the latest Amazon Linux 2023 for arm64 (Graviton, t4g), from the public SSM
 * parameter Amazon publishes per region. Amazon Linux has the AWS CLI and `dnf install nodejs22`,
 * which the agent's user data needs.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { clientConfig } from '../../controller/aws/clients';
import type { AwsOptions } from '../../shared/aws/options';

export const IMAGE_PARAMETER = '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64';

export async function imageOfParameter(aws: AwsOptions): Promise<string> {
  const ssm = new SSMClient(clientConfig(aws));
  const id = (await ssm.send(new GetParameterCommand({ Name: IMAGE_PARAMETER }))).Parameter?.Value;
  if (!id?.startsWith('ami-')) throw new Error(`${IMAGE_PARAMETER} holds no image id (got ${id})`);
  return id;
}
