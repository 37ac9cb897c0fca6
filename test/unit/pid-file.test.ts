/** The pid monitor reads its pid file strictly (node-agent/monitors/pid.ts). */
import { describe, expect, it } from 'vitest';
import { parsePidFile } from '../../node-agent/monitors/pid';

describe('pid file parsing', () => {
  it('takes one decimal pid, with whitespace around it', () => {
    expect(parsePidFile('12345')).toBe(12345);
    expect(parsePidFile('12345\n')).toBe(12345);
    expect(parsePidFile('  4194304 \n')).toBe(4_194_304);
  });

  it('refuses what parseInt took as a live pid: "1abc", "1e9", "7\\n12345", init, and more', () => {
    // Before: Number.parseInt read 1, 1 and 7 from the first three (pid 1 is init: always "alive").
    for (const text of [
      '1abc',
      '1e9',
      '7\n12345',
      '1',
      '0',
      '-5',
      '',
      '   ',
      '0x1f',
      '12 34',
      '4194305',
      '+12',
      '1.0',
    ])
      expect(parsePidFile(text), JSON.stringify(text)).toEqual({ error: expect.stringMatching(/^holds /) });
    expect(parsePidFile('1')).toEqual({ error: 'holds 1, which is init, not the application' });
  });
});
