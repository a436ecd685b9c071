// A buffer layout declared once: named byte sizes that both plan an arena (layoutBytes, the same
// arithmetic as Arena.alloc) and hand out the pointers (allocLayout), so planning and allocation
// can never disagree.

import type { Ptr } from '../kernels/types.js';
import { planArena, type Arena } from './arena.js';

export type Layout = Readonly<Record<string, number>>;
export type Pointers<L extends Layout> = { readonly [K in keyof L]: Ptr };

export const LAYOUT_ALIGN = 64;

/** Arena bytes the layout needs when allocated alone, or after others (planArena pads each buffer
 *  to LAYOUT_ALIGN; a following layout starts aligned, so sums of layoutBytes are exact). */
export function layoutBytes(layout: Layout): number {
  const sizes = Object.values(layout);
  return sizes.length === 0 ? 0 : Math.ceil(planArena(sizes, LAYOUT_ALIGN) / LAYOUT_ALIGN) * LAYOUT_ALIGN;
}

/** Allocates every buffer of the layout in `arena`, in declaration order. */
export function allocLayout<L extends Layout>(arena: Arena, layout: L): Pointers<L> {
  const out: Record<string, Ptr> = {};
  for (const [name, bytes] of Object.entries(layout)) out[name] = arena.alloc(bytes, LAYOUT_ALIGN);
  // a following layout starts on an aligned boundary, as layoutBytes assumed
  if (Object.keys(layout).length > 0) arena.alloc(0, LAYOUT_ALIGN);
  return out as Pointers<L>;
}
