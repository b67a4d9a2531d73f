// The unit hierarchy as its codes tell it: district (6 digits) › street (9)
// › community (12) › grid (14–15). Pure functions, tested under Node.

export const LEVELS = ['district', 'street', 'community', 'grid'];
export const LEVEL_ZH = { district: '区', street: '街道', community: '社区', grid: '网格' };

/** The level a code names, by its length (6, 9, 12, then 14–15 digits). */
export function levelOf(code) {
  const n = code.length;
  return n <= 6 ? 'district' : n <= 9 ? 'street' : n <= 12 ? 'community' : 'grid';
}

/** The codes of a unit and its ancestors, district first. */
export function chainCodes(code) {
  const out = [];
  for (const n of [6, 9, 12]) if (code.length > n) out.push(code.slice(0, n));
  out.push(code);
  return out;
}

/** The level below level (districts below the city, null; grids below grids). */
export function childLevel(level) {
  return level ? LEVELS[Math.min(LEVELS.indexOf(level) + 1, LEVELS.length - 1)] : 'district';
}
