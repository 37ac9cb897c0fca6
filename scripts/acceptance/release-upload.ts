/**
 * The agent release in the deployment's bucket, as the README has users do it
 * (`aws s3 cp --recursive dist/release/<v>/ s3://BUCKET/agent/<v>/`), and the bucket emptied of
 * every version at teardown (the deployment's bucket is versioned and kept by CloudFormation).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { AwsOptions } from '../../shared/aws/options';

export function s3Client(aws: AwsOptions): S3Client {
  return new S3Client({
    ...(aws.region ? { region: aws.region } : {}),
    // The emulator serves buckets by path, not by host name.
    ...(aws.endpoint ? { endpoint: aws.endpoint, forcePathStyle: true } : {}),
  });
}

/** Uploads every file of the release directory under `agent/<version>/`; returns the keys. */
export async function uploadRelease(
  s3: S3Client,
  bucket: string,
  dir: string,
  keyPrefix: string,
): Promise<string[]> {
  const keys: string[] = [];
  for (const file of readdirSync(dir).sort()) {
    const key = `${keyPrefix}${file}`;
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(path.join(dir, file)) }),
    );
    keys.push(key);
  }
  return keys;
}

/** Deletes every object version and delete marker, then the bucket. */
export async function emptyAndDeleteBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].flatMap((v) =>
      v.Key ? [{ Key: v.Key, ...(v.VersionId ? { VersionId: v.VersionId } : {}) }] : [],
    );
    if (objects.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}
