/**
 * The platform the agent runs on (see types.ts). Chosen once from `process.platform`; everything
 * OS-specific goes through it.
 */
import { linux } from './linux';
import type { Platform, PlatformName } from './types';
import { createWindowsPlatform } from './windows';

export type { LogLevel, Platform, PlatformName, VipOps, WatchdogSupport } from './types';

let current: Platform | undefined;

/** The platform of a name (tests force one; the Windows one with its real processes). */
export function platformNamed(name: PlatformName): Platform {
  return name === 'windows' ? createWindowsPlatform() : linux;
}

/** The platform of this process: Windows on win32, Linux everywhere else. */
export function currentPlatform(): Platform {
  current ??= platformNamed(process.platform === 'win32' ? 'windows' : 'linux');
  return current;
}
