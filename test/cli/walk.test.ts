import { describe, expect, it } from 'vitest';
import { x86Image } from '../mm/image-fixtures';
import { run } from './run';

describe('mmulab walk', () => {
  it('prints FORMATS.md JSON: entries, leaves, leaves_by_level, checksum, seconds', async () => {
    const { dir } = x86Image();
    const r = await run('walk', dir, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ entries: 3072, leaves: 5, leaves_by_level: { '1': 3, '2': 1, '3': 1 }, checksum: '0x40c01' });
    expect(typeof j.seconds).toBe('number');
  });
  it('--start/--end limit the walk', async () => {
    const { dir } = x86Image();
    const r = await run('walk', dir, '--start', '0x400000', '--end', '0x402000', '--json');
    expect(JSON.parse(r.out)).toMatchObject({ leaves: 2, checksum: '0x201' });
  });
  it('a folder without an image exits 1 with the missing file named, no stack trace', async () => {
    const r = await run('walk', '/nonexistent-mmulab');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/machine.json: not found/);
    expect(r.err).not.toMatch(/at .*\.ts:/);
  });
  it.each([
    [['walk'], /DIR is required/],
    [['walk', '/tmp', '--start', 'zz'], /--start: 'zz' is not a hex address/],
  ])('usage errors %j exit 2', async (argv, message) => {
    const { dir } = x86Image();
    const r = await run(...argv.map((a) => (a === '/tmp' ? dir : a)));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});
