// The page's small DOM and fetch helpers.

export const $ = (id) => document.getElementById(id);
export const num = new Intl.NumberFormat('zh-CN');
export const nowSec = () => Math.floor(Date.now() / 1000);
export const unixOf = (t) => (t ? Math.floor(Date.parse(t) / 1000) || 0 : 0);

/** An element with attributes (class, style, data-*, or properties such as
 * onclick) and children; null children are left out. */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

/** GETs JSON; a failure throws with the problem's detail when there is one. */
export async function getJSON(url, signal) {
  const r = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch { /* not problem+json */ }
    throw new Error(`${url}: ${r.status} ${detail}`);
  }
  return r.json();
}

let toastTimer = 0;
/** Shows msg for 8 s (and logs it). */
export function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 8000);
  console.error(msg);
}
