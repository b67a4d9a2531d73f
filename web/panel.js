// The info panel (the selected unit, its chain, its objects by class, its
// children), the breadcrumbs, the legend, the read-out and the clock.

import { $, el, num } from './dom.js';
import { LEVELS, LEVEL_ZH, childLevel } from './units.js';

const MAJOR_ZH = { '01': '公用设施', '02': '道路交通', '03': '市容环境', '04': '园林绿化', '05': '房屋土地', '06': '其他设施' };

function classBars(byClass, total, n) {
  const rows = Object.entries(byClass || {}).map(([k, v]) => ({ code: k, ...v })).sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
  const max = rows.length ? rows[0].count : 1;
  const ul = $('classes');
  ul.replaceChildren(...rows.slice(0, n).map((r) => el('li', { title: `${r.code} ${r.name}` },
    el('span', { class: 'nm' }, r.name),
    el('span', { class: 'bar-track' }, el('span', { class: 'bar-fill', style: `display:block;width:${(100 * r.count / max).toFixed(1)}%` })),
    el('span', { class: 'n' }, num.format(r.count)))));
  if (!rows.length) ul.replaceChildren(el('li', { class: 'empty' }, el('span', { class: 'nm' }, total ? '' : '无部件')));
}

function topClasses(byClass, n) {
  return Object.values(byClass || {}).sort((a, b) => b.count - a.count).slice(0, n).map((c) => `${c.name} ${num.format(c.count)}`).join(' · ');
}

/** Fills the panel and the breadcrumbs with a unit (level null: the city):
 * its chain of units, its statistics and its children (a grid: its objects). */
export function render(app, { level, code, name, chain, stats, objects }) {
  const badge = $('unit-level');
  badge.textContent = level ? LEVEL_ZH[level] : '全市';
  badge.className = `badge ${level || ''}`;
  $('unit-name').textContent = name;
  $('unit-code').textContent = code || `${stats.children.length} 个区`;

  const ol = $('chain');
  const items = LEVELS.map((lv, i) => {
    const u = chain[i];
    if (!u) return el('li', { class: `empty ${lv}` }, el('span', { class: 'lv' }, LEVEL_ZH[lv]), el('span', { class: 'nm' }, '—'));
    return el('li', { class: `${lv}${u.code === code ? ' current' : ''}`, 'data-code': u.code, onclick: () => app.select(u.code) },
      el('span', { class: 'lv' }, LEVEL_ZH[lv]), el('span', { class: 'nm' }, u.name), el('span', { class: 'cd' }, u.code));
  });
  ol.replaceChildren(...items);

  $('total').textContent = num.format(stats.unit.total);
  classBars(stats.unit.by_class, stats.unit.total, 8);

  const kidLevel = childLevel(level);
  const tbody = $('children').tBodies[0];
  if (level === 'grid') {
    $('children-title').replaceChildren('网格内部件 ', el('small', {}, `objects (${objects ? objects.features.length : 0}${objects && objects.links && objects.links.length ? '+' : ''})`));
    tbody.replaceChildren(...(objects ? objects.features : []).map((f) => el('tr', {},
      el('td', {}, el('div', { class: 'nm' }, f.properties.class_name || f.properties.class), el('div', { class: 'cd' }, f.properties.code)),
      el('td', { class: 'n' }, MAJOR_ZH[String(f.properties.class).slice(0, 2)] || ''))));
  } else {
    const kids = [...stats.children].sort((a, b) => b.total - a.total || a.code.localeCompare(b.code));
    $('children-title').replaceChildren(`下级${LEVEL_ZH[kidLevel]} `, el('small', {}, `${kids.length} 个 · 按部件数`));
    const shown = kids.slice(0, 14);
    tbody.replaceChildren(...shown.map((c) => el('tr', { 'data-code': c.code, onclick: () => app.select(c.code) },
      el('td', {}, el('div', { class: 'nm' }, c.name), el('div', { class: 'cd' }, c.code), el('div', { class: 'top' }, topClasses(c.by_class, 2))),
      el('td', { class: 'n' }, num.format(c.total)))));
    if (kids.length > shown.length) tbody.append(el('tr', { class: 'more' }, el('td', { colSpan: 2 }, `另 ${kids.length - shown.length} 个`)));
  }

  const crumbs = [el('a', { href: '#', class: level ? '' : 'current', onclick: (e) => { e.preventDefault(); app.home(); } }, '全市')];
  for (const u of chain) {
    crumbs.push(el('span', { class: 'sep' }, '›'));
    crumbs.push(el('a', { href: `#${u.code}`, class: u.code === code ? 'current' : '', onclick: (e) => { e.preventDefault(); app.select(u.code); } }, u.name));
  }
  $('crumbs').replaceChildren(...crumbs);
  $('back').disabled = !level;
  $('panel').dataset.state = 'ready';
  $('panel').dataset.code = code;
  document.title = `${name} · 网格化管理指挥中心`;
}

/** The legend: the unit levels with their zooms, the objects' major
 * classes and the event states, in the style's colours. */
export function legend(app) {
  const { style, colors, zooms, statuses, palette, evMinZoom } = app;
  const objLayer = style.layers.find((l) => l['source-layer'] === 'objects' && l.type === 'circle');
  const match = objLayer && objLayer.paint['circle-color'];
  const majors = [];
  if (Array.isArray(match) && match[0] === 'match') {
    for (let i = 2; i + 1 < match.length; i += 2) majors.push([match[i], match[i + 1]]);
  }
  $('legend').replaceChildren(
    el('h3', {}, '单元层级'),
    ...LEVELS.map((lv) => el('div', { class: 'row', 'data-level': lv },
      el('span', { class: 'sw', style: `border:0.2rem solid ${colors[lv]};background:${colors[lv]}22` }),
      el('span', {}, LEVEL_ZH[lv]), el('span', { class: 'z' }, `z${zooms[lv][0]}–${zooms[lv][1]}`))),
    majors.length ? el('h3', { style: 'margin-top:.5rem' }, '部件大类') : null,
    majors.length ? el('div', { class: 'cols' }, ...majors.map(([k, c]) => el('div', { class: 'row' },
      el('span', { class: 'dot', style: `background:${c}` }), el('span', {}, MAJOR_ZH[k] || k)))) : null,
    el('h3', { style: 'margin-top:.5rem' }, '事件状态 ', el('span', { class: 'z' }, `点 z${evMinZoom}+`)),
    el('div', { class: 'cols cols3 events' }, ...statuses.all.map((st) => el('div', { class: 'row', 'data-status': st, title: st },
      el('span', { class: 'dot', style: `background:${palette.pal[st]}` }), el('span', {}, statuses.zh[st])))),
    el('div', { class: 'cols events-key' },
      el('div', { class: 'row', 'data-key': 'overdue' }, el('span', { class: 'dot overdue' }), el('span', {}, '超期')),
      el('div', { class: 'row', 'data-key': 'counts' }, el('span', { class: 'bubble' }), el('span', {}, '在办/超期数'))),
  );
}

/** The read-out: zoom, the levels shown (the legend dims the others), centre. */
export function hud(app) {
  const { map, zooms } = app;
  const z = map.getZoom();
  const shown = LEVELS.filter((lv) => z >= zooms[lv][0] && z < zooms[lv][1] + 1);
  for (const row of document.querySelectorAll('.legend .row[data-level]')) row.classList.toggle('hidden-level', !shown.includes(row.dataset.level));
  const c = map.getCenter();
  $('hud').textContent = `z ${z.toFixed(1)} · ${shown.map((lv) => LEVEL_ZH[lv]).join(' / ')} · ${c.lng.toFixed(4)}, ${c.lat.toFixed(4)}`;
}

export function clock() {
  $('clock').textContent = new Date().toLocaleString('zh-CN', { hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
