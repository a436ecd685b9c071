// A 1-layer Memory Mosaic learns multi-query associative recall (14 key–value pairs, 4 queries) in a
// few hundred steps: the end-to-end check that forward, backward, AdamW and the model fit together.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainRecall } from '../../src/mosaic/train-recall.js';

test('1-layer mosaic solves associative recall (eval accuracy, held-out sequences)', () => {
  const { accuracy, rows } = trainRecall({ steps: 150, seed: 2, every: 50 });
  assert.ok(rows[0].loss > 2, `the first 50 steps start near chance (loss ${rows[0].loss})`);
  assert.ok(accuracy >= 0.9, `accuracy ${accuracy} after 150 steps; rows ${JSON.stringify(rows)}`);
});
