import { defineConfig } from 'vitest/config';

// Projects: unit (pure logic), property (fault schedules on the in-memory cloud), integration (real
// AWS SDK clients against the moto server that test/integration/global-setup.ts starts), browser
// (the web console in headless Chromium on the sandbox).
export default defineConfig({
  test: {
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'property', include: ['test/property/**/*.test.ts'], testTimeout: 600_000 } },
      {
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 180_000 },
      },
      {
        test: {
          name: 'packaging',
          include: ['test/packaging/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The web console in headless Chromium (Debian's, installed by the setup where missing).
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          // After the other projects: a second sandbox and Chromium beside the agent and e2e tests
          // would load 2 cores enough to upset their timing.
          sequence: { groupOrder: 1 },
          globalSetup: ['test/browser/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 900_000,
        },
      },
      {
        // `npm run chaos`, short: last and alone, since its lanes of real processes on 2 cores would
        // upset the timing of every other project (and be upset by it).
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          sequence: { groupOrder: 2 },
          testTimeout: 900_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'agent',
          include: ['test/agent/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
