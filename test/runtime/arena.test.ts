import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena, MAX_ARENA_BYTES, PAGE_BYTES, RESERVED_BYTES, planArena } from '../../src/runtime/arena.js';

test('alloc returns aligned, non-overlapping offsets above the reserved page', () => {
  const arena = Arena.create(10_000, { kernels: 'reference', label: 'a' });
  assert.equal(arena.capacity, PAGE_BYTES); // rounded up to whole pages, reserved page excluded
  const a = arena.alloc(3);
  const b = arena.alloc(100);
  const c = arena.alloc(5, 4096);
  const d = arena.alloc(0, 8);
  assert.equal(a, RESERVED_BYTES);
  assert.equal(b, RESERVED_BYTES + 64);
  assert.equal(c, RESERVED_BYTES + 4096);
  assert.equal(d, RESERVED_BYTES + 4096 + 8);
  assert.equal(arena.used, 4096 + 8);
  assert.equal(arena.remaining, arena.capacity - arena.used);
});

test('planArena sizes an arena that holds exactly those buffers', () => {
  const sizes = [PAGE_BYTES - 1, 4, PAGE_BYTES, 3 * PAGE_BYTES + 5, 1];
  const bytes = planArena(sizes, 64);
  // By hand: 65535; align 65536 +4 = 65540; align 65600 +65536 = 131136; +196613 = 327749; align 327808 +1.
  assert.equal(bytes, 327809);
  const arena = Arena.create(bytes, { kernels: 'reference' });
  for (const s of sizes) arena.alloc(s);
  assert.equal(arena.used, bytes);
  assert.equal(planArena([]), 0);
});

test('a full arena throws an error naming label, request and what remains', () => {
  const arena = Arena.create(PAGE_BYTES, { kernels: 'reference', label: 'layer 7' });
  arena.alloc(PAGE_BYTES - 100);
  assert.throws(() => arena.alloc(200), (err: Error) =>
    /layer 7/.test(err.message) && /200 bytes/.test(err.message) && /100 of 65536 bytes remain/.test(err.message));
  // A failed alloc changes nothing: what fits still fits.
  assert.equal(arena.alloc(64), RESERVED_BYTES + PAGE_BYTES - 64);
  assert.throws(() => arena.alloc(1), /layer 7/);
});

test('bad arguments are rejected with clear errors', () => {
  assert.throws(() => Arena.create(MAX_ARENA_BYTES + 1, { kernels: 'reference', label: 'big' }), /big.*split this data/);
  assert.throws(() => Arena.create(-1, { kernels: 'reference' }), /non-negative integer/);
  assert.throws(() => Arena.create(10, { kernels: 'cuda' as never }), /'wasm' or 'reference'/);
  const arena = Arena.create(1024, { kernels: 'reference' });
  assert.throws(() => arena.alloc(8, 3), /power of two/);
  assert.throws(() => arena.alloc(1.5), /non-negative integer/);
  assert.throws(() => planArena([1], 0), /power of two/);
});

test('typed views alias the same bytes of the shared memory', () => {
  const arena = Arena.create(1024, { kernels: 'reference' });
  const p = arena.alloc(16);
  arena.f32(p, 1)[0] = 1; // 0x3f800000 little-endian
  assert.deepEqual([...arena.u8(p, 4)], [0, 0, 0x80, 0x3f]);
  assert.deepEqual([...arena.u16(p, 2)], [0, 0x3f80]);
  arena.i32(p + 4, 1)[0] = -2;
  assert.equal(arena.u8(p + 4, 4)[3], 0xff);
  assert.ok(arena.memory.buffer instanceof SharedArrayBuffer);
});

test('several arenas totalling more than 4 GiB coexist (pages are committed lazily)', () => {
  const size = 1.5 * 1024 ** 3;
  const arenas = [0, 1, 2].map((i) => Arena.create(size, { kernels: 'reference', label: `big ${i}` }));
  const ids = new Set(arenas.map((a) => a.id));
  assert.equal(ids.size, 3);
  for (const [i, a] of arenas.entries()) {
    assert.equal(a.memory.buffer.byteLength, RESERVED_BYTES + size);
    const last = a.alloc(size - 4, 4) + size - 4; // the last 4 bytes of the memory
    assert.equal(last, a.memory.buffer.byteLength - 4);
    a.i32(last, 1)[0] = 1000 + i;
  }
  for (const [i, a] of arenas.entries()) assert.equal(a.i32(a.memory.buffer.byteLength - 4, 1)[0], 1000 + i);
});

test('an arena of the maximum size can be created and its last byte written', () => {
  const arena = Arena.create(MAX_ARENA_BYTES, { kernels: 'reference' });
  assert.equal(arena.memory.buffer.byteLength, 4 * 1024 ** 3);
  arena.u8(4 * 1024 ** 3 - 1, 1)[0] = 7;
  assert.equal(arena.u8(4 * 1024 ** 3 - 1, 1)[0], 7);
});
