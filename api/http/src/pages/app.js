// ticketd pages: a small client-side router over the /v1 JSON API. No framework, no build step.
// The session (bearer token, role) lives in this tab's sessionStorage.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SESSION_KEY = 'ticketd.session';
const CITIES = [
  { id: 'oslo', name: 'Oslo', lat: 59.91, lon: 10.75 },
  { id: 'stockholm', name: 'Stockholm', lat: 59.33, lon: 18.07 },
  { id: 'copenhagen', name: 'Copenhagen', lat: 55.68, lon: 12.57 },
];
const TIER_COLORS = ['#2b6cb0', '#2f855a', '#c05621', '#6b46c1', '#b7791f', '#0987a0', '#97266d', '#4a5568'];
const STATE_NAMES = ['available', 'held', 'sold', 'not for sale'];
// The seat map's `seat_states`: one character per seat, by seat index.
const STATE_CHARS = { f: 0, h: 1, s: 2, x: 3 };
const NO_TIER = 63;
const STATE_CLASSES = ['', 'held', 'sold', 'na'];
const POLL_MS = 5000;
const MAX_SELECTED = 20;

// ---------- small helpers ----------

/** Builds an element: h('a', {href: '/'}, 'text', child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Appends the children that are there (skipping null, undefined and false). */
function add(parent, ...children) {
  parent.append(...children.flat().filter(c => c !== null && c !== undefined && c !== false));
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function money(minor, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(minor / 100);
  } catch (_) {
    return (minor / 100).toFixed(2) + ' ' + currency;
  }
}

/** A time from the API (an RFC 3339 string), shown in `timeZone` or the browser's own. */
function when(t, timeZone) {
  const d = new Date(t);
  if (t === null || t === undefined || isNaN(d.getTime())) return '';
  const opts = { dateStyle: 'medium', timeStyle: 'short' };
  try {
    return d.toLocaleString(undefined, timeZone ? { ...opts, timeZone } : opts);
  } catch (_) {
    return d.toLocaleString();
  }
}

/** Unix milliseconds of an RFC 3339 time (NaN when absent or invalid). */
function ms(t) {
  return t ? new Date(t).getTime() : NaN;
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), b => b.toString(16).padStart(2, '0')).join('');
}

function enc(s) { return encodeURIComponent(s); }

function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    if (s && ms(s.expires_at) > Date.now()) return s;
  } catch (_) { /* none */ }
  return null;
}

function setSession(s) {
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else sessionStorage.removeItem(SESSION_KEY);
  renderNav();
}

/** An API error: the problem's status, code and detail. */
class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

/**
 * Calls the API. Unsafe methods carry an Idempotency-Key (`opts.key`, or a fresh one); an
 * OUTCOME_UNKNOWN answer is retried with the same key a few times, as the API asks.
 */
async function api(method, path, body, opts = {}) {
  const headers = { accept: 'application/json' };
  const s = session();
  if (s) headers.authorization = 'Bearer ' + s.token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const unsafe = method !== 'GET';
  const key = opts.key || newKey();
  if (unsafe) headers['idempotency-key'] = key;
  for (let attempt = 0; ; attempt++) {
    let r;
    try {
      r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      if (unsafe && attempt < 3) { await sleep(500); continue; }
      throw new ApiError(0, 'NETWORK', 'the server could not be reached');
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (r.ok) return data;
    const code = (data && data.code) || String(r.status);
    if (unsafe && (code === 'OUTCOME_UNKNOWN' || code === 'UNAVAILABLE') && attempt < 3) {
      const wait = Math.min(2, Number(r.headers.get('retry-after')) || 1);
      await sleep(wait * 1000);
      continue;
    }
    if (r.status === 401 && s) setSession(null);
    throw new ApiError(r.status, code, (data && data.detail) || r.statusText);
  }
}

/** A role="alert" line for errors. */
function errorLine() {
  return h('p', { class: 'error', role: 'alert', 'aria-live': 'assertive' });
}

function showError(el, e) {
  el.textContent = e instanceof ApiError ? `${humanCode(e.code)} (${e.detail || e.message})` : String(e);
  el.dataset.code = e instanceof ApiError ? e.code : 'ERROR';
}

function humanCode(code) {
  const names = {
    SEAT_ALREADY_HELD: 'Someone else is holding that seat',
    SEAT_TAKEN: 'That seat is sold',
    NOT_ENOUGH_SEATS: 'Not enough seats left together',
    PAYMENT_DECLINED: 'The card was declined',
    HOLD_EXPIRED: 'The hold expired',
    SALE_NOT_OPEN: 'Sales are not open',
    RATE_LIMITED: 'Too many attempts; wait a little',
    UNAUTHENTICATED: 'Please log in',
    FORBIDDEN: 'Your account may not do that',
    ORDER_NOT_CANCELABLE: 'This order can no longer be canceled',
    EMAIL_TAKEN: 'That email already has an account',
  };
  return names[code] || code;
}

// Per-page timers and pollers, stopped when the page changes.
let pageTimers = [];
function every(ms, f) { pageTimers.push(setInterval(f, ms)); }
function after(ms, f) { pageTimers.push(setTimeout(f, ms)); }
function stopTimers() { pageTimers.forEach(t => { clearInterval(t); clearTimeout(t); }); pageTimers = []; }

// ---------- routing ----------

const ROUTES = [
  [/^\/(?:app\/?)?$/, homePage],
  [/^\/app\/login$/, loginPage],
  [/^\/app\/signup$/, signupPage],
  [/^\/app\/events\/([^/]+)$/, eventPage],
  [/^\/app\/events\/([^/]+)\/dts\/([^/]+)$/, dtPage],
  [/^\/app\/holds\/([^/]+)\/([^/]+)\/([^/]+)$/, holdPage],
  [/^\/app\/checkout\/([^/]+)\/([^/]+)\/([^/]+)$/, checkoutPage],
  [/^\/app\/orders\/([^/]+)$/, orderPage],
  [/^\/app\/tickets$/, ticketsPage],
  [/^\/app\/tickets\/([^/]+)$/, ticketPage],
  [/^\/app\/scan$/, scanPage],
  [/^\/app\/seller$/, sellerPage],
];

function go(path, replace) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

async function render() {
  stopTimers();
  const main = document.getElementById('main');
  main.replaceChildren();
  delete main.dataset.ready;
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  for (const [re, page] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    main.dataset.page = page.name.replace(/Page$/, '');
    try {
      await page(main, params, ...m.slice(1).map(decodeURIComponent));
    } catch (e) {
      const line = errorLine();
      showError(line, e);
      add(main, line);
      if (e instanceof ApiError && e.status === 401) {
        add(main, h('p', {}, h('a', { href: loginHref(), 'data-link': true }, 'Log in')));
      }
    }
    main.dataset.ready = '1';
    const h1 = main.querySelector('h1');
    document.title = (h1 ? h1.textContent + ' · ' : '') + 'ticketd';
    return;
  }
  main.dataset.page = 'notfound';
  add(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/', 'data-link': true }, 'Home')));
  main.dataset.ready = '1';
}

function loginHref() {
  return '/app/login?next=' + enc(location.pathname + location.search);
}

/** The session with one of `roles`, or a redirect to the login page. */
function requireRole(roles) {
  const s = session();
  if (s && roles.includes(s.role)) return s;
  go(loginHref(), true);
  throw new ApiError(401, 'UNAUTHENTICATED', roles.join(' or ') + ' account needed');
}

function renderNav() {
  const nav = document.getElementById('nav');
  const s = session();
  const link = (href, text) => h('a', { href, 'data-link': true }, text);
  const items = [link('/', 'Events')];
  if (!s || s.role === 'user' || s.role === 'admin') items.push(link('/app/tickets', 'My tickets'));
  if (s && (s.role === 'scanner' || s.role === 'admin')) items.push(link('/app/scan', 'Scanner'));
  if (s && (s.role === 'seller' || s.role === 'admin')) items.push(link('/app/seller', 'Seller'));
  if (s) {
    items.push(h('span', { class: 'who', id: 'who' }, s.email || s.role));
    items.push(h('button', { type: 'button', id: 'logout', onclick: () => { setSession(null); go('/'); } }, 'Log out'));
  } else {
    items.push(link('/app/login', 'Log in'), link('/app/signup', 'Sign up'));
  }
  nav.replaceChildren(...items);
}

document.addEventListener('click', e => {
  const a = e.target.closest && e.target.closest('a[data-link]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', render);
window.addEventListener('DOMContentLoaded', () => { renderNav(); render(); });

// ---------- shared data ----------

const venueCache = new Map();
async function venue(venueId) {
  if (!venueCache.has(venueId)) venueCache.set(venueId, api('GET', `/v1/venues/${enc(venueId)}`));
  try {
    return await venueCache.get(venueId);
  } catch (e) {
    venueCache.delete(venueId);
    throw e;
  }
}

/** Labels of every seat index ("A 3 12"), and GA area names by area index. */
function seatLabels(layout) {
  const labels = [];
  for (const s of layout.seating_map.sections) {
    for (const r of s.rows) for (const seat of r.seats) labels.push(`${s.section_id} ${r.label} ${seat.number}`);
  }
  return labels;
}

/** A held seat's label: the API's, else one from the venue's map. */
function itemLabel(seat, labels) {
  if (seat.label) return seat.label;
  if (seat.seat_index !== null && seat.seat_index !== undefined) return labels[seat.seat_index] || `seat ${seat.seat_index}`;
  return seat.ga_area_id || 'standing';
}

/** A ticket's status as shown: the API's own word with spaces ("valid", "used", ...). */
function ticketStatus(st) {
  return String(st || '').replace(/_/g, ' ');
}

const ORDER_STATUS = { confirmed: 'Confirmed', partially_refunded: 'Partially refunded', refunded: 'Refunded', canceled: 'Canceled' };
function orderStatus(st) {
  return ORDER_STATUS[st] || ticketStatus(st);
}

// ---------- pages: browse ----------

async function homePage(main, params) {
  add(main, h('h1', {}, 'Find events'));
  const q = params.get('q') || '';
  const cityId = params.get('city') || '';
  const lat = params.get('lat');
  const lon = params.get('lon');
  const search = h('input', { type: 'search', name: 'q', id: 'search', value: q, placeholder: 'Artist, event, venue…', 'aria-label': 'Search events' });
  const form = h('form', { class: 'row', role: 'search', onsubmit: e => {
    e.preventDefault();
    const v = search.value.trim();
    go(v ? '/?q=' + enc(v) : '/');
  } }, search, h('button', { type: 'submit', id: 'search-go' }, 'Search'));
  const city = h('select', { id: 'city', 'aria-label': 'City' },
    h('option', { value: '' }, 'Anywhere'),
    CITIES.map(c => h('option', { value: c.id, selected: c.id === cityId }, c.name)));
  city.addEventListener('change', () => go(city.value ? '/?city=' + city.value : '/'));
  const geo = h('button', { type: 'button', class: 'secondary', id: 'near-me', onclick: () => {
    if (!navigator.geolocation) { toast('This browser cannot tell where you are; pick a city'); return; }
    navigator.geolocation.getCurrentPosition(
      p => go(`/?lat=${p.coords.latitude.toFixed(3)}&lon=${p.coords.longitude.toFixed(3)}`),
      () => toast('Location not available; pick a city'),
      { timeout: 10000, maximumAge: 600000 });
  } }, 'Near me');
  add(main, form, h('div', { class: 'row actions' }, h('label', { class: 'inline' }, 'Popular near', city), geo));

  let url = '/v1/events?limit=12';
  let heading = 'Popular events';
  if (q) { url += '&q=' + enc(q); heading = `Results for “${q}”`; }
  else if (lat && lon) { url += `&lat=${enc(lat)}&lon=${enc(lon)}&radius_km=100`; heading = 'Popular near you'; }
  else if (cityId) {
    const c = CITIES.find(c => c.id === cityId);
    if (c) { url += `&lat=${c.lat}&lon=${c.lon}&radius_km=50`; heading = `Popular in ${c.name}`; }
  }
  const list = h('ul', { class: 'cards', id: 'events' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More');
  add(main, h('h2', {}, heading), list, h('div', { class: 'actions' }, more));
  let cursor = null;
  async function page() {
    const r = await api('GET', url + (cursor ? '&cursor=' + enc(cursor) : ''));
    for (const e of r.events) {
      list.append(h('li', { class: 'card event' },
        h('a', { class: 'title', href: `/app/events/${enc(e.event_id)}`, 'data-link': true, dataset: { event: e.event_id } }, e.title),
        h('div', { class: 'muted' }, `${e.category} · ${when(e.starts_at)}`),
        h('div', { class: 'muted' }, e.venue_id + (e.distance_m != null ? ` · ${(e.distance_m / 1000).toFixed(1)} km` : '')),
        e.performers.length ? h('div', {}, e.performers.join(', ')) : null));
    }
    if (!list.children.length) list.append(h('li', { class: 'muted' }, 'No events found.'));
    cursor = r.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener('click', () => page().catch(e => toast(e.message)));
  await page();
}

async function eventPage(main, _params, eventId) {
  const [event, dts] = await Promise.all([
    api('GET', `/v1/events/${enc(eventId)}`),
    api('GET', `/v1/events/${enc(eventId)}/dts`),
  ]);
  add(main, h('h1', {}, event.title),
    h('p', { class: 'muted' }, event.category, event.performers.length ? ' · ' + event.performers.join(', ') : ''),
    event.description ? h('p', {}, event.description) : null,
    h('h2', {}, 'Dates'));
  const list = h('ul', { class: 'cards', id: 'dts' });
  add(main, list);
  for (const dt of dts.dts) {
    let place = dt.venue_id;
    try { const v = await venue(dt.venue_id); place = `${v.name}, ${v.city}`; } catch (_) { /* id only */ }
    const now = Date.now();
    const published = dt.status === 'published';
    const onSale = published && ms(dt.sale_starts_at) <= now && now < ms(dt.sale_ends_at);
    list.append(h('li', { class: 'card dt' },
      h('div', { class: 'title' }, when(dt.starts_at, dt.time_zone)),
      h('div', { class: 'muted' }, place),
      h('div', {}, h('span', { class: 'badge', dataset: { status: dt.status } }, published ? (onSale ? 'on sale' : 'not on sale now') : dt.status)),
      onSale ? h('p', {}, h('a', { class: 'button', href: `/app/events/${enc(eventId)}/dts/${enc(dt.dt_id)}`, 'data-link': true, dataset: { dt: dt.dt_id } }, 'Choose seats')) : null));
  }
  if (!dts.dts.length) list.append(h('li', { class: 'muted' }, 'No dates yet.'));
}

/** Seat state (0 free, 1 held, 2 sold, 3 not for sale) of seat `i` from the states string. */
function seatState(states, i) {
  const st = STATE_CHARS[states[i]];
  return st === undefined ? 3 : st;
}

/** Each seat's index in `tiers` (NO_TIER when in none), from the seat map's tier runs. */
function seatTierIndex(runs, tiers, count) {
  const byId = new Map(tiers.map((t, i) => [t.tier_id, i]));
  const out = new Uint8Array(count).fill(NO_TIER);
  for (const r of runs) {
    const t = r.tier_id === null || r.tier_id === undefined ? undefined : byId.get(r.tier_id);
    if (t !== undefined) out.fill(t, r.first_seat, Math.min(count, r.first_seat + r.length));
  }
  return out;
}

async function dtPage(main, _params, eventId, dtId) {
  const base = `/v1/events/${enc(eventId)}/dts/${enc(dtId)}`;
  const [event, first] = await Promise.all([api('GET', `/v1/events/${enc(eventId)}`), api('GET', base)]);
  const layout = await venue(first.dt.venue_id);
  const map = first.seat_map;
  const labels = seatLabels(layout);
  const tiers = map.tiers;
  const tierOf = seatTierIndex(map.tier_runs, tiers, map.seat_count);
  const currency = tiers.length ? tiers[0].currency : 'EUR';
  add(main, h('h1', {}, event.title),
    h('p', { class: 'muted' }, `${when(first.dt.starts_at, first.dt.time_zone)} · ${layout.name}, ${layout.city}`));

  const err = errorLine();
  const legend = h('ul', { class: 'legend', id: 'legend' });
  function drawLegend(ts) {
    legend.replaceChildren(
      ...ts.map((t, i) => h('li', {}, h('i', { style: `background:${TIER_COLORS[i % TIER_COLORS.length]}` }),
        `${t.name} ${money(t.price_minor, t.currency)} (${t.available} left)`)),
      h('li', {}, h('i', { style: 'background:#c9c6d3' }), 'held'),
      h('li', {}, h('i', { style: 'background:#6b6880' }), 'sold'),
      h('li', {}, h('i', { style: 'background:#e0218a' }), 'your choice'));
  }
  drawLegend(tiers);

  // Best available.
  const tierSel = h('select', { id: 'best-tier', 'aria-label': 'Tier' }, tiers.map(t => h('option', { value: t.tier_id }, `${t.name} · ${money(t.price_minor, t.currency)}`)));
  const qty = h('input', { id: 'best-qty', type: 'number', min: 1, max: MAX_SELECTED, value: 2, 'aria-label': 'How many', style: 'width:5rem' });
  const bestForm = h('form', { class: 'row', id: 'best-form', onsubmit: async e => {
    e.preventDefault();
    await placeHold({ tier_id: tierSel.value, quantity: Number(qty.value) }, bestForm);
  } }, h('label', {}, 'Tier', tierSel), h('label', {}, 'Seats', qty), h('button', { type: 'submit', id: 'best-go' }, 'Best available'));

  // GA areas.
  const gaForms = map.ga.map((g, gi) => {
    const area = layout.seating_map.ga_areas.find(a => a.area_id === g.area_id) || { name: g.area_id };
    const tier = tiers.find(t => t.tier_id === g.tier_id);
    const n = h('input', { type: 'number', min: 1, max: MAX_SELECTED, value: 1, style: 'width:5rem', 'aria-label': `${area.name} places` });
    const f = h('form', { class: 'row', onsubmit: async e => {
      e.preventDefault();
      await placeHold({ ga: [{ area_id: g.area_id, quantity: Number(n.value) }] }, f);
    } }, h('span', {}, `${area.name}${tier ? ' · ' + money(tier.price_minor, tier.currency) : ''} · `, h('span', { id: `ga-left-${gi}` }, `${g.available} left`)), n,
      h('button', { type: 'submit', class: 'secondary' }, 'Hold standing places'));
    return f;
  });

  // The seat map.
  const selected = new Set();
  const seats = [];
  const svgEl = svg('svg', { id: 'seatmap', role: 'group', 'aria-label': 'Seat map', tabindex: 0 });
  const group = svg('g', {});
  svgEl.append(group);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  let spacing = Infinity;
  for (const s of layout.seating_map.sections) for (const r of s.rows) {
    for (let k = 0; k < r.seats.length; k++) {
      const p = r.seats[k];
      minX = Math.min(minX, p.x); minY = Math.min(minY, p.y); maxX = Math.max(maxX, p.x); maxY = Math.max(maxY, p.y);
      if (k > 0) {
        const d = Math.hypot(p.x - r.seats[k - 1].x, p.y - r.seats[k - 1].y);
        if (d > 0) spacing = Math.min(spacing, d);
      }
    }
  }
  if (!isFinite(spacing)) spacing = 4;
  const radius = spacing * 0.4;
  const focusable = map.seat_count <= 3000;
  let idx = 0;
  for (const s of layout.seating_map.sections) {
    let sx = Infinity, sy = Infinity;
    for (const r of s.rows) for (const p of r.seats) { sx = Math.min(sx, p.x); sy = Math.min(sy, p.y); }
    if (isFinite(sx)) {
      const t = svg('text', { x: sx - radius, y: sy - radius * 1.6, class: 'section-label', 'font-size': spacing * 0.9 });
      t.textContent = s.name;
      group.append(t);
    }
    for (const r of s.rows) for (const p of r.seats) {
      const i = idx++;
      const c = svg('circle', { cx: p.x, cy: p.y, r: radius, class: 'seat', 'data-seat': i });
      if (focusable) { c.setAttribute('tabindex', '0'); c.setAttribute('role', 'checkbox'); }
      group.append(c);
      seats.push(c);
    }
  }
  const pad = spacing * 2;
  const full = { x: minX - pad, y: minY - pad * 1.5, w: Math.max(maxX - minX + 2 * pad, 10), h: Math.max(maxY - minY + 2.5 * pad, 10) };
  let view = { ...full };
  svgEl.style.aspectRatio = `${full.w} / ${full.h}`;
  function applyView() { svgEl.setAttribute('viewBox', `${view.x} ${view.y} ${view.w} ${view.h}`); }
  applyView();
  function zoom(f, cx, cy) {
    const nw = Math.min(full.w * 1.5, Math.max(spacing * 6, view.w * f));
    const k = nw / view.w;
    const px = cx === undefined ? view.x + view.w / 2 : cx;
    const py = cy === undefined ? view.y + view.h / 2 : cy;
    view = { x: px - (px - view.x) * k, y: py - (py - view.y) * k, w: view.w * k, h: view.h * k };
    applyView();
  }
  function pan(dx, dy) { view.x += dx * view.w; view.y += dy * view.h; applyView(); }

  let states = map.seat_states;
  function paint() {
    for (let i = 0; i < seats.length; i++) {
      const st = seatState(states, i);
      const t = tierOf[i];
      const c = seats[i];
      c.setAttribute('fill', t === NO_TIER ? '#eeedf2' : TIER_COLORS[t % TIER_COLORS.length]);
      const sel = selected.has(i);
      c.setAttribute('class', 'seat' + (STATE_CLASSES[st] ? ' ' + STATE_CLASSES[st] : '') + (sel ? ' sel' : ''));
      c.dataset.state = STATE_NAMES[st];
      if (focusable) {
        c.setAttribute('aria-checked', sel ? 'true' : 'false');
        c.setAttribute('aria-label', `${labels[i]}, ${t === NO_TIER ? '' : tiers[t].name + ', '}${STATE_NAMES[st]}`);
      }
    }
  }
  paint();

  const chosen = h('p', { id: 'chosen', 'aria-live': 'polite' });
  const holdBtn = h('button', { type: 'button', id: 'hold-selected', disabled: true }, 'Hold selected seats');
  function showChosen() {
    const list = [...selected];
    let total = 0;
    for (const i of list) { const t = tierOf[i]; if (t !== NO_TIER) total += tiers[t].price_minor; }
    chosen.textContent = list.length ? `${list.map(i => labels[i]).join(', ')} · ${money(total, currency)} + fees` : 'Pick seats on the map, or take the best available.';
    holdBtn.disabled = !list.length;
  }
  showChosen();
  function toggle(i) {
    if (!(i >= 0 && i < seats.length)) return;
    if (selected.has(i)) selected.delete(i);
    else {
      if (seatState(states, i) !== 0 || tierOf[i] === NO_TIER) { toast(`${labels[i]} is ${STATE_NAMES[seatState(states, i)]}`); return; }
      if (selected.size >= MAX_SELECTED) { toast(`At most ${MAX_SELECTED} seats at once`); return; }
      selected.add(i);
    }
    paint();
    showChosen();
  }

  // Pointer: click selects, drag pans, wheel zooms.
  let drag = null;
  let dragged = false;
  svgEl.addEventListener('pointerdown', e => { drag = { x: e.clientX, y: e.clientY, view: { ...view } }; dragged = false; });
  svgEl.addEventListener('pointermove', e => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!dragged && Math.hypot(dx, dy) < 5) return;
    if (!dragged) { dragged = true; svgEl.setPointerCapture(e.pointerId); svgEl.classList.add('panning'); }
    const rect = svgEl.getBoundingClientRect();
    const scale = Math.max(view.w / rect.width, view.h / rect.height);
    view.x = drag.view.x - dx * scale;
    view.y = drag.view.y - dy * scale;
    applyView();
  });
  const endDrag = () => { drag = null; svgEl.classList.remove('panning'); };
  svgEl.addEventListener('pointerup', endDrag);
  svgEl.addEventListener('pointercancel', endDrag);
  svgEl.addEventListener('click', e => {
    if (dragged) { dragged = false; return; }
    const s = e.target.closest('[data-seat]');
    if (s) toggle(Number(s.dataset.seat));
  });
  svgEl.addEventListener('wheel', e => {
    e.preventDefault();
    const rect = svgEl.getBoundingClientRect();
    const pt = svgEl.createSVGPoint();
    pt.x = e.clientX; pt.y = e.clientY;
    const m = svgEl.getScreenCTM();
    const p = m ? pt.matrixTransform(m.inverse()) : { x: undefined, y: undefined };
    zoom(e.deltaY > 0 ? 1.2 : 1 / 1.2, p.x, p.y);
    void rect;
  }, { passive: false });
  svgEl.addEventListener('keydown', e => {
    const s = e.target.closest && e.target.closest('[data-seat]');
    if (s && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); toggle(Number(s.dataset.seat)); return; }
    const moves = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] };
    if (e.target === svgEl && moves[e.key]) { e.preventDefault(); pan(...moves[e.key]); }
    else if (e.key === '+' || e.key === '=') { e.preventDefault(); zoom(1 / 1.5); }
    else if (e.key === '-') { e.preventDefault(); zoom(1.5); }
  });
  const tools = h('div', { class: 'map-tools' },
    h('button', { type: 'button', id: 'zoom-in', 'aria-label': 'Zoom in', onclick: () => zoom(1 / 1.5) }, '+'),
    h('button', { type: 'button', id: 'zoom-out', 'aria-label': 'Zoom out', onclick: () => zoom(1.5) }, '−'),
    h('button', { type: 'button', id: 'zoom-reset', 'aria-label': 'Whole venue', onclick: () => { view = { ...full }; applyView(); } }, '⤢'));
  const wrap = h('div', { class: 'map-wrap' }, svgEl, tools);

  async function placeHold(body, form) {
    const s = session();
    if (!s) { go(loginHref()); return; }
    const buttons = form.querySelectorAll('button');
    buttons.forEach(b => { b.disabled = true; });
    err.textContent = '';
    delete err.dataset.code;
    try {
      const hold = await api('POST', `${base}/holds`, body);
      go(`/app/holds/${enc(eventId)}/${enc(dtId)}/${enc(hold.hold_id)}`);
    } catch (e) {
      showError(err, e);
      buttons.forEach(b => { b.disabled = false; });
      showChosen();
      refresh();
    }
  }
  holdBtn.addEventListener('click', () => placeHold({ seats: [...selected].sort((a, b) => a - b) }, selBox));
  const selBox = h('div', { class: 'card', id: 'selection' }, chosen, holdBtn);

  async function refresh() {
    try {
      const r = await api('GET', base);
      states = r.seat_map.seat_states;
      for (const i of [...selected]) {
        if (seatState(states, i) !== 0) { selected.delete(i); toast(`${labels[i]} was just taken`); }
      }
      paint();
      showChosen();
      drawLegend(r.seat_map.tiers);
      r.seat_map.ga.forEach((g, gi) => { const el = document.getElementById(`ga-left-${gi}`); if (el) el.textContent = `${g.available} left`; });
    } catch (_) { /* next poll */ }
  }
  every(POLL_MS, refresh);

  add(main, legend, wrap,
    h('p', { class: 'muted' }, focusable ? 'Tab to a seat and press Enter to choose it; drag or use the arrow keys to move, + and − to zoom.' : 'Drag to move, + and − or the wheel to zoom; or take the best available below.'),
    err, selBox,
    h('h2', {}, 'Best available'), bestForm,
    gaForms.length ? h('h2', {}, 'Standing') : null, ...gaForms);
}

// ---------- pages: hold, checkout, order ----------

async function loadHold(eventId, dtId, holdId) {
  const base = `/v1/events/${enc(eventId)}/dts/${enc(dtId)}`;
  const [hold, dt] = await Promise.all([api('GET', `${base}/holds/${enc(holdId)}`), api('GET', base)]);
  const layout = await venue(dt.dt.venue_id);
  return { base, hold, dt, layout, labels: seatLabels(layout) };
}

/** The tier (from the seat map's availability) of a held seat or place, if it has one. */
function seatTier(seat, seatMap) {
  let tierId = null;
  if (seat.seat_index !== null && seat.seat_index !== undefined) {
    const run = seatMap.tier_runs.find(r => r.first_seat <= seat.seat_index && seat.seat_index < r.first_seat + r.length);
    tierId = run ? run.tier_id : null;
  } else if (seat.ga_area_id) {
    const g = seatMap.ga.find(a => a.area_id === seat.ga_area_id);
    tierId = g ? g.tier_id : null;
  }
  return tierId === null ? null : seatMap.tiers.find(t => t.tier_id === tierId) || null;
}

function countdown(expiresAt, onExpire) {
  const expiresAtMs = ms(expiresAt);
  const el = h('div', { class: 'countdown', id: 'countdown', role: 'timer', 'aria-live': 'off' });
  let done = false;
  const tick = () => {
    const left = Math.max(0, Math.floor((expiresAtMs - Date.now()) / 1000));
    el.textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}` : 'expired';
    el.classList.toggle('low', left < 60);
    el.dataset.secondsLeft = String(left);
    if (left === 0 && !done) { done = true; if (onExpire) onExpire(); }
  };
  tick();
  every(1000, tick);
  return el;
}

function holdSummary(d) {
  const { hold, labels, dt } = d;
  // The hold carries its total; each seat's price and fee are its tier's, from the seat map.
  const cell = (t, k) => h('td', { class: 'num' }, t ? money(t[k], t.currency) : '');
  return h('table', { id: 'hold-items' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Seat'), h('th', { class: 'num' }, 'Price'), h('th', { class: 'num' }, 'Fee'))),
    h('tbody', {}, hold.seats.map(seat => {
      const t = seatTier(seat, dt.seat_map);
      return h('tr', {}, h('td', {}, itemLabel(seat, labels)), cell(t, 'price_minor'), cell(t, 'fee_minor'));
    })),
    h('tfoot', {}, h('tr', {}, h('th', {}, 'Total'), h('th', { class: 'num', id: 'hold-total', colspan: 2 }, money(hold.total_minor, hold.currency)))));
}

async function holdPage(main, _params, eventId, dtId, holdId) {
  requireRole(['user']);
  const d = await loadHold(eventId, dtId, holdId);
  const live = d.hold.status === 'live';
  const err = errorLine();
  add(main, h('h1', {}, 'Your seats are held'),
    h('p', { id: 'hold-status', dataset: { status: d.hold.status } }, live ? 'They are yours until the timer runs out:' : `This hold is ${d.hold.status}.`),
    d.hold.order_id ? h('p', {}, h('a', { href: `/app/orders/${enc(d.hold.order_id)}`, 'data-link': true }, 'Its order')) : null,
    live ? countdown(d.hold.expires_at, () => { checkout.disabled = true; toast('The hold expired'); }) : null,
    holdSummary(d), err);
  const checkout = h('button', { type: 'button', id: 'to-checkout', disabled: !live, onclick: () => go(`/app/checkout/${enc(eventId)}/${enc(dtId)}/${enc(holdId)}`) }, 'Checkout');
  const release = h('button', { type: 'button', class: 'secondary', id: 'release', disabled: !live, onclick: async () => {
    try {
      await api('DELETE', `${d.base}/holds/${enc(holdId)}`);
      toast('Seats released');
      go(`/app/events/${enc(eventId)}/dts/${enc(dtId)}`);
    } catch (e) { showError(err, e); }
  } }, 'Release seats');
  add(main, h('div', { class: 'actions' }, checkout, release));
}

async function checkoutPage(main, _params, eventId, dtId, holdId) {
  requireRole(['user']);
  const d = await loadHold(eventId, dtId, holdId);
  const err = errorLine();
  const pay = h('button', { type: 'submit', id: 'pay' }, `Pay ${money(d.hold.total_minor, d.hold.currency)}`);
  const card = h('select', { id: 'card', name: 'card' },
    h('option', { value: 'pm_card_visa' }, 'Visa •••• 4242 (test card: approved)'),
    h('option', { value: 'pm_card_declined' }, 'Visa •••• 0002 (test card: declined)'));
  const name = h('input', { id: 'card-name', name: 'name', autocomplete: 'cc-name', required: true, placeholder: 'As on the card' });
  // A retried attempt (no definite answer) reuses its key, so it cannot pay twice.
  const keyName = `ticketd.buy.${holdId}`;
  const form = h('form', { class: 'stack card', id: 'checkout-form', onsubmit: async e => {
    e.preventDefault();
    pay.disabled = true;
    err.textContent = '';
    delete err.dataset.code;
    const key = sessionStorage.getItem(keyName) || newKey();
    sessionStorage.setItem(keyName, key);
    try {
      const r = await api('POST', d.base, { hold_id: holdId, expected_total_minor: d.hold.total_minor, payment_method_token: card.value }, { key });
      sessionStorage.removeItem(keyName);
      go(`/app/orders/${enc(r.order_id)}?confirmed=1`);
    } catch (e2) {
      if (!(e2 instanceof ApiError) || e2.status === 0 || e2.code === 'OUTCOME_UNKNOWN') {
        showError(err, e2);
        err.append(' Press Pay again to retry the same payment.');
      } else {
        sessionStorage.removeItem(keyName);
        showError(err, e2);
      }
      pay.disabled = false;
    }
  } },
  h('label', {}, 'Name on card', name),
  h('label', {}, 'Card', card),
  h('p', { class: 'muted' }, 'Card details go to the payment provider; ticketd only keeps its token.'),
  pay);
  add(main, h('h1', {}, 'Checkout'), countdown(d.hold.expires_at, () => { pay.disabled = true; }), holdSummary(d), err, form);
}

async function orderPage(main, params, orderId) {
  requireRole(['user', 'admin']);
  const order = await api('GET', `/v1/orders/${enc(orderId)}`);
  const confirmed = params.get('confirmed') === '1' && order.status === 'confirmed';
  add(main, h('h1', {}, confirmed ? 'Thank you: payment confirmed' : 'Your order'),
    h('p', {}, 'Confirmation ', h('code', { id: 'order-id' }, order.order_id)),
    h('p', {}, 'Status: ', h('strong', { id: 'order-status', dataset: { status: order.status } }, orderStatus(order.status)),
      ` · paid ${money(order.total_minor, order.currency)}`,
      order.refunded_minor ? ` · ${money(order.refunded_minor, order.currency)} back to your card` : ''));
  add(main, h('h2', {}, 'Tickets'), h('ul', { class: 'cards', id: 'order-tickets' }, order.tickets.map(t => h('li', { class: 'card' },
    h('a', { class: 'title', href: `/app/tickets/${enc(t.ticket_id)}`, 'data-link': true, dataset: { ticket: t.ticket_id } }, t.seat_label),
    h('div', { class: 'muted' }, `${money(t.price_minor, t.currency)} · ${ticketStatus(t.status)}`)))));
  if (order.status === 'confirmed') {
    const err = errorLine();
    const reason = h('input', { id: 'cancel-reason', placeholder: 'Why (optional)' });
    const really = h('div', { class: 'card', id: 'cancel-confirm', hidden: true },
      h('p', {}, `Cancel every ticket of this order? ${money(order.total_minor - order.refunded_minor, order.currency)} goes back to your card.`),
      h('label', {}, 'Reason', reason),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'danger', id: 'cancel-yes', onclick: async e => {
          e.target.disabled = true;
          try {
            await api('POST', `/v1/orders/${enc(orderId)}/cancel`, { reason: reason.value });
            toast('Order canceled');
            go(`/app/orders/${enc(orderId)}`, true);
          } catch (e2) { showError(err, e2); e.target.disabled = false; }
        } }, 'Yes, cancel the order'),
        h('button', { type: 'button', class: 'secondary', onclick: () => { really.hidden = true; } }, 'Keep it')));
    add(main, h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', id: 'cancel-order', onclick: () => { really.hidden = false; reason.focus(); } }, 'Cancel order')),
    really, err);
  }
}

// ---------- pages: tickets ----------

async function ticketsPage(main) {
  requireRole(['user', 'admin']);
  const r = await api('GET', '/v1/me/tickets');
  add(main, h('h1', {}, 'My tickets'));
  const list = h('ul', { class: 'cards', id: 'tickets' });
  for (const t of r.tickets) {
    list.append(h('li', { class: 'card' },
      h('a', { class: 'title', href: `/app/tickets/${enc(t.ticket_id)}`, 'data-link': true, dataset: { ticket: t.ticket_id } }, `${t.event_id} · ${t.seat_label}`),
      h('div', { class: 'muted' }, `${t.dt_id} · ${ticketStatus(t.status)}`),
      h('div', {}, h('a', { href: `/app/orders/${enc(t.order_id)}`, 'data-link': true }, 'Order'))));
  }
  if (!r.tickets.length) list.append(h('li', { class: 'muted' }, 'No tickets yet.'));
  add(main, list);
}

async function ticketPage(main, _params, ticketId) {
  requireRole(['user', 'admin']);
  add(main, h('h1', {}, 'Ticket'));
  const box = h('div', { class: 'card', id: 'ticket' });
  add(main, box);
  async function load() {
    const t = await api('GET', `/v1/tickets/${enc(ticketId)}`);
    const qr = h('div', { class: 'qr', id: 'qr', role: 'img', 'aria-label': 'Ticket QR code' });
    // The QR is SVG the API drew from the ticket id and the current code.
    qr.innerHTML = t.qr_svg;
    const left = h('span', { id: 'code-left' });
    let n = t.code_refresh_in_s;
    const tick = () => { left.textContent = `new code in ${Math.max(0, n)} s`; n -= 1; };
    tick();
    box.replaceChildren(
      h('h2', {}, t.seat_label),
      h('p', { class: 'muted' }, `${t.event_id} · ${t.dt_id} · `, h('strong', { id: 'ticket-status' }, ticketStatus(t.status))),
      qr,
      h('p', { class: 'code', id: 'code', 'aria-label': 'Code' }, t.code),
      h('p', { class: 'muted' }, left),
      h('details', {}, h('summary', {}, 'Show the code as text'), h('code', { class: 'payload', id: 'qr-payload' }, t.qr_payload)),
      h('p', {}, h('a', { href: `/app/orders/${enc(t.order_id)}`, 'data-link': true }, 'Order and cancel')));
    box.dataset.code = t.code;
    stopTimers();
    every(1000, tick);
    // A new code every step: read it again when this one rotates.
    after(Math.max(1, t.code_refresh_in_s) * 1000 + 300, () => load().catch(e => toast(e.message)));
  }
  await load();
}

// ---------- pages: scanner ----------

async function scanPage(main) {
  requireRole(['scanner', 'admin']);
  const dt = h('input', { id: 'scan-dt', required: true, value: sessionStorage.getItem('ticketd.scan.dt') || '', placeholder: 'e.g. aurora-live-d0' });
  const gate = h('input', { id: 'scan-gate', required: true, value: sessionStorage.getItem('ticketd.scan.gate') || 'main', maxlength: 64 });
  const code = h('textarea', { id: 'scan-code', required: true, placeholder: 'TKT1.… from the QR, or the ticket id and the 6-digit code', rows: 3 });
  const result = h('div', { id: 'scan-result', 'aria-live': 'assertive' });
  const err = errorLine();
  const go_ = h('button', { type: 'submit', id: 'scan-go' }, 'Scan');
  const form = h('form', { class: 'stack', id: 'scan-form', onsubmit: async e => {
    e.preventDefault();
    sessionStorage.setItem('ticketd.scan.dt', dt.value.trim());
    sessionStorage.setItem('ticketd.scan.gate', gate.value.trim());
    const text = code.value.trim();
    const body = { dt_id: dt.value.trim(), gate: gate.value.trim() };
    const m = text.match(/^(\S+)\s+(\d{6})$/);
    if (m && !text.startsWith('TKT1.')) { body.ticket_id = m[1]; body.code = m[2]; } else body.qr_payload = text;
    err.textContent = '';
    result.replaceChildren();
    go_.disabled = true;
    try {
      const a = await api('POST', '/v1/scans', body);
      const why = {
        already_used: a.used_at ? `Already used at gate ${a.used_at_gate}, ${when(a.used_at)}` : 'Already used',
        canceled: 'The ticket was canceled', refunded: 'The ticket was refunded', wrong_dt: 'A ticket for another date',
        unknown_ticket: 'No such ticket', stale_code: 'An old code: ask for the live QR (a screenshot?)', forged_code: 'Not a valid code',
      }[a.verdict] || a.verdict;
      result.append(h('div', { class: 'verdict ' + (a.admitted ? 'admitted' : 'refused'), id: 'verdict', dataset: { verdict: a.verdict } },
        a.admitted ? 'ADMITTED' : 'REFUSED'),
      h('p', { id: 'verdict-reason' }, a.admitted ? `Welcome: ${a.seat_label || ''}` : `${ticketStatus(a.verdict).toUpperCase()}: ${why}`));
      code.value = '';
    } catch (e2) { showError(err, e2); }
    go_.disabled = false;
    code.focus();
  } }, h('label', {}, 'Dt (event date) being admitted', dt), h('label', {}, 'Gate', gate), h('label', {}, 'Code', code), go_);
  add(main, h('h1', {}, 'Scan tickets'), form, err, result);
  code.focus();
}

// ---------- pages: accounts ----------

async function loginPage(main, params) {
  const email = h('input', { id: 'login-email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const err = errorLine();
  const form = h('form', { class: 'stack', id: 'login-form', onsubmit: async e => {
    e.preventDefault();
    try {
      await logIn(email.value, password.value);
      go(nextAfterLogin(params), true);
    } catch (e2) { showError(err, e2); }
  } }, h('label', {}, 'Email', email), h('label', {}, 'Password', password), h('button', { type: 'submit', id: 'login-go' }, 'Log in'));
  add(main, h('h1', {}, 'Log in'), form, err,
    h('p', {}, 'New here? ', h('a', { href: '/app/signup' + (params.get('next') ? '?next=' + enc(params.get('next')) : ''), 'data-link': true }, 'Sign up')));
  email.focus();
}

async function logIn(email, password) {
  const s = await api('POST', '/v1/sessions', { email, password });
  setSession({ ...s, email: email.trim().toLowerCase() });
  return s;
}

function nextAfterLogin(params) {
  const next = params.get('next');
  if (next && next.startsWith('/') && !next.startsWith('//')) return next;
  const s = session();
  if (s && s.role === 'scanner') return '/app/scan';
  if (s && s.role === 'seller') return '/app/seller';
  return '/';
}

async function signupPage(main, params) {
  const name = h('input', { id: 'signup-name', autocomplete: 'name', required: true });
  const email = h('input', { id: 'signup-email', type: 'email', autocomplete: 'email', required: true });
  const password = h('input', { id: 'signup-password', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const phone = h('input', { id: 'signup-phone', type: 'tel', autocomplete: 'tel', placeholder: '+47…' });
  const role = h('select', { id: 'signup-role' }, h('option', { value: 'user' }, 'I buy tickets'), h('option', { value: 'seller' }, 'I sell tickets'));
  const err = errorLine();
  const form = h('form', { class: 'stack', id: 'signup-form', onsubmit: async e => {
    e.preventDefault();
    try {
      await api('POST', '/v1/users', { name: name.value, email: email.value, password: password.value, phone: phone.value, role: role.value });
      await logIn(email.value, password.value);
      go(nextAfterLogin(params), true);
    } catch (e2) { showError(err, e2); }
  } }, h('label', {}, 'Name', name), h('label', {}, 'Email', email), h('label', {}, 'Password (at least 8 characters)', password),
  h('label', {}, 'Phone (for SMS reminders)', phone), h('label', {}, 'Account', role), h('button', { type: 'submit', id: 'signup-go' }, 'Sign up'));
  add(main, h('h1', {}, 'Sign up'), form, err);
  name.focus();
}

// ---------- pages: seller ----------

const SELLER_ITEMS = 'ticketd.seller.items';
function sellerItems() {
  try { return JSON.parse(localStorage.getItem(SELLER_ITEMS)) || { venues: [], events: [], dts: [] }; } catch (_) { return { venues: [], events: [], dts: [] }; }
}
function rememberSeller(kind, item) {
  const all = sellerItems();
  all[kind] = [item, ...all[kind].filter(x => x.id !== item.id)].slice(0, 50);
  localStorage.setItem(SELLER_ITEMS, JSON.stringify(all));
}

/** "A:10x20, B:5x30" -> sections; "floor:500" -> GA areas; seats 4 units apart like the demo venues. */
function buildSeatingMap(sectionsText, gaText) {
  const sections = [];
  let offset = 0;
  for (const part of sectionsText.split(',').map(s => s.trim()).filter(Boolean)) {
    const m = part.match(/^([\w-]+)\s*:\s*(\d+)\s*x\s*(\d+)$/i);
    if (!m) throw new Error(`“${part}” is not SECTION:ROWSxSEATS`);
    const rows = Number(m[2]), per = Number(m[3]);
    sections.push({
      section_id: m[1], name: `Section ${m[1]}`,
      rows: Array.from({ length: rows }, (_, r) => ({
        label: String(r + 1),
        seats: Array.from({ length: per }, (_, s) => ({ number: String(s + 1), x: offset + s * 4, y: r * 4 })),
      })),
    });
    offset += per * 4 + 12;
  }
  const ga_areas = gaText.split(',').map(s => s.trim()).filter(Boolean).map(part => {
    const m = part.match(/^([\w-]+)\s*:\s*(\d+)$/);
    if (!m) throw new Error(`“${part}” is not AREA:CAPACITY`);
    return { area_id: m[1], name: `Standing ${m[1]}`, capacity: Number(m[2]) };
  });
  return { sections, ga_areas };
}

/** Unix milliseconds as a datetime-local input's value (the browser's local time). */
function localInput(t) {
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

/** A datetime-local input's value (the browser's local time) as RFC 3339 in UTC. */
function isoTime(value, label) {
  const d = new Date(value);
  if (isNaN(d.getTime())) throw new Error(`${label}: not a date and time`);
  return d.toISOString();
}

function field(label, input) { return h('label', {}, label, input); }

async function sellerPage(main) {
  requireRole(['seller', 'admin']);
  const items = sellerItems();
  add(main, h('h1', {}, 'Sell tickets'));
  const out = (id) => h('p', { id, 'aria-live': 'polite' });

  // Venue.
  const vName = h('input', { id: 'venue-name', required: true });
  const vCity = h('input', { id: 'venue-city', required: true });
  const vAddr = h('input', { id: 'venue-address', required: true });
  const vLat = h('input', { id: 'venue-lat', type: 'number', step: 'any', required: true, value: '59.91' });
  const vLon = h('input', { id: 'venue-lon', type: 'number', step: 'any', required: true, value: '10.75' });
  const vSections = h('input', { id: 'venue-sections', value: 'A:10x20, B:10x20', 'aria-describedby': 'venue-sections-help' });
  const vGa = h('input', { id: 'venue-ga', value: '', placeholder: 'floor:300' });
  const vOut = out('venue-out');
  const venueForm = h('form', { class: 'stack card', id: 'venue-form', onsubmit: async e => {
    e.preventDefault();
    try {
      const seating_map = buildSeatingMap(vSections.value, vGa.value);
      const r = await api('POST', '/v1/venues', { name: vName.value, city: vCity.value, address: vAddr.value, lat: Number(vLat.value), lon: Number(vLon.value), seating_map });
      const id = r.venue_id;
      rememberSeller('venues', { id, name: vName.value });
      vOut.className = 'ok';
      vOut.textContent = `Venue created: ${id}`;
      vOut.dataset.id = id;
      dVenue.value = id;
    } catch (e2) { vOut.className = 'error'; showError(vOut, e2); }
  } }, h('h2', {}, 'New venue'), field('Name', vName), field('City', vCity), field('Address', vAddr),
  h('div', { class: 'row' }, field('Latitude', vLat), field('Longitude', vLon)),
  field('Seated sections', vSections), h('small', { id: 'venue-sections-help', class: 'muted' }, 'SECTION:ROWSxSEATS, comma separated'),
  field('Standing areas (AREA:CAPACITY)', vGa), h('button', { type: 'submit', id: 'venue-go' }, 'Create venue'), vOut);

  // Event.
  const eTitle = h('input', { id: 'event-title', required: true });
  const eCat = h('input', { id: 'event-category', required: true, value: 'concert' });
  const ePerf = h('input', { id: 'event-performers', placeholder: 'comma separated' });
  const eDesc = h('textarea', { id: 'event-description' });
  const eOut = out('event-out');
  const eventForm = h('form', { class: 'stack card', id: 'event-form', onsubmit: async e => {
    e.preventDefault();
    try {
      const r = await api('POST', '/v1/events', { title: eTitle.value, category: eCat.value, description: eDesc.value, performers: ePerf.value.split(',').map(s => s.trim()).filter(Boolean) });
      const id = r.event_id;
      rememberSeller('events', { id, name: eTitle.value });
      eOut.className = 'ok';
      eOut.textContent = `Event created: ${id}`;
      eOut.dataset.id = id;
      dEvent.value = id;
    } catch (e2) { eOut.className = 'error'; showError(eOut, e2); }
  } }, h('h2', {}, 'New event'), field('Title', eTitle), field('Category', eCat), field('Performers', ePerf), field('Description', eDesc),
  h('button', { type: 'submit', id: 'event-go' }, 'Create event'), eOut);

  // Dt with tiers and a sale window.
  const list = (id, xs) => h('datalist', { id }, xs.map(x => h('option', { value: x.id }, x.name)));
  const dEvent = h('input', { id: 'dt-event', required: true, list: 'my-events' });
  const dVenue = h('input', { id: 'dt-venue', required: true, list: 'my-venues' });
  const now = Date.now();
  const dStart = h('input', { id: 'dt-start', type: 'datetime-local', required: true, value: localInput(now + 30 * 86400000) });
  const dTz = h('input', { id: 'dt-tz', required: true, value: Intl.DateTimeFormat().resolvedOptions().timeZone || 'Europe/Oslo' });
  const dSaleStart = h('input', { id: 'dt-sale-start', type: 'datetime-local', required: true, value: localInput(now - 60000) });
  const dSaleEnd = h('input', { id: 'dt-sale-end', type: 'datetime-local', required: true, value: localInput(now + 29 * 86400000) });
  const dPublish = h('input', { id: 'dt-publish', type: 'checkbox', checked: true });
  const tiersBox = h('div', { id: 'tiers' });
  function addTier(t) {
    const row = h('fieldset', { class: 'tier-row' }, h('legend', {}, 'Tier'),
      field('Id', h('input', { name: 'tier_id', required: true, value: t.tier_id })),
      field('Name', h('input', { name: 'name', required: true, value: t.name })),
      field('Price', h('input', { name: 'price', type: 'number', min: 0, step: '0.01', required: true, value: t.price })),
      field('Currency', h('input', { name: 'currency', required: true, value: t.currency, maxlength: 3 })),
      field('Sections', h('input', { name: 'sections', value: t.sections, placeholder: 'A, B' })),
      field('Seat ranges', h('input', { name: 'ranges', value: '', placeholder: '0-99' })),
      field('Standing areas', h('input', { name: 'ga', value: t.ga, placeholder: 'floor' })),
      h('button', { type: 'button', class: 'secondary', onclick: () => row.remove() }, 'Remove'));
    tiersBox.append(row);
  }
  addTier({ tier_id: 'std', name: 'Standard', price: '450.00', currency: 'EUR', sections: 'A, B', ga: '' });
  const dOut = out('dt-out');
  const csv = s => s.split(',').map(x => x.trim()).filter(Boolean);
  const dtForm = h('form', { class: 'stack card', id: 'dt-form', onsubmit: async e => {
    e.preventDefault();
    try {
      const tiers = [...tiersBox.querySelectorAll('.tier-row')].map(row => {
        const v = n => row.querySelector(`[name=${n}]`).value;
        return {
          tier_id: v('tier_id'), name: v('name'), price_minor: Math.round(Number(v('price')) * 100), currency: v('currency').toUpperCase(),
          sections: csv(v('sections')), ga_areas: csv(v('ga')),
          seat_ranges: csv(v('ranges')).map(r => { const [a, b] = r.split('-').map(Number); return { start: a, end: (b === undefined ? a : b) + 1 }; }),
        };
      });
      const eventId = dEvent.value.trim();
      const r = await api('POST', `/v1/events/${enc(eventId)}/dts`, {
        venue_id: dVenue.value.trim(), starts_at: isoTime(dStart.value, 'Starts'), time_zone: dTz.value.trim(), tiers,
        sale_starts_at: isoTime(dSaleStart.value, 'Sale opens'), sale_ends_at: isoTime(dSaleEnd.value, 'Sale closes'), publish: dPublish.checked,
      });
      const id = r.dt_id;
      rememberSeller('dts', { id, event: eventId, name: `${eventId} ${dStart.value}` });
      dOut.className = 'ok';
      dOut.replaceChildren(`Dt created: ${id} · `, h('a', { href: `/app/events/${enc(eventId)}/dts/${enc(id)}`, 'data-link': true }, 'its seat map'));
      dOut.dataset.id = id;
      sEvent.value = eventId; sDt.value = id; wEvent.value = eventId; wDt.value = id;
    } catch (e2) { dOut.className = 'error'; showError(dOut, e2); }
  } }, h('h2', {}, 'New date and time'), list('my-events', items.events), list('my-venues', items.venues),
  field('Event id', dEvent), field('Venue id', dVenue), h('div', { class: 'row' }, field('Starts', dStart), field('Time zone', dTz)),
  h('div', { class: 'row' }, field('Sale opens', dSaleStart), field('Sale closes', dSaleEnd)),
  h('h3', {}, 'Tiers'), tiersBox,
  h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', id: 'add-tier', onclick: () => addTier({ tier_id: '', name: '', price: '', currency: 'EUR', sections: '', ga: '' }) }, 'Add tier')),
  h('label', { class: 'inline' }, dPublish, 'Put on sale now'),
  h('button', { type: 'submit', id: 'dt-go' }, 'Create date'), dOut);

  // Sale window.
  const wEvent = h('input', { id: 'window-event', required: true, list: 'my-events' });
  const wDt = h('input', { id: 'window-dt', required: true });
  const wStart = h('input', { id: 'window-start', type: 'datetime-local', required: true, value: localInput(now) });
  const wEnd = h('input', { id: 'window-end', type: 'datetime-local', required: true, value: localInput(now + 7 * 86400000) });
  const wOut = out('window-out');
  const windowForm = h('form', { class: 'stack card', id: 'window-form', onsubmit: async e => {
    e.preventDefault();
    try {
      await api('PUT', `/v1/events/${enc(wEvent.value.trim())}/dts/${enc(wDt.value.trim())}/sale-window`,
        { sale_starts_at: isoTime(wStart.value, 'Opens'), sale_ends_at: isoTime(wEnd.value, 'Closes') });
      wOut.className = 'ok';
      wOut.textContent = 'Sale window saved';
    } catch (e2) { wOut.className = 'error'; showError(wOut, e2); }
  } }, h('h2', {}, 'Sale window'), field('Event id', wEvent), field('Dt id', wDt), h('div', { class: 'row' }, field('Opens', wStart), field('Closes', wEnd)),
  h('button', { type: 'submit', id: 'window-go' }, 'Save sale window'), wOut);

  // Sales report.
  const sEvent = h('input', { id: 'sales-event', required: true, list: 'my-events' });
  const sDt = h('input', { id: 'sales-dt', required: true });
  const report = h('div', { id: 'sales-report' });
  const sErr = errorLine();
  const salesForm = h('form', { class: 'stack card', id: 'sales-form', onsubmit: async e => {
    e.preventDefault();
    sErr.textContent = '';
    try {
      const r = await api('GET', `/v1/events/${enc(sEvent.value.trim())}/dts/${enc(sDt.value.trim())}/sales`);
      report.replaceChildren(
        h('p', {}, h('strong', { id: 'sales-sold' }, `${r.sold} of ${r.capacity} sold`), ` · ${money(r.gross_minor, r.currency)} gross · ${r.plan} plan`),
        r.tiers.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Tier', 'Price', 'Sold', 'Held', 'Left', 'Gross'].map((c, i) => h('th', { class: i ? 'num' : '' }, c)))),
          h('tbody', {}, r.tiers.map(t => h('tr', {}, h('td', {}, t.name), h('td', { class: 'num' }, money(t.price_minor, r.currency)),
            h('td', { class: 'num' }, t.sold), h('td', { class: 'num' }, t.held), h('td', { class: 'num' }, t.available), h('td', { class: 'num' }, money(t.gross_minor, r.currency))))))
          : h('p', { class: 'muted' }, 'Per-tier figures come with the VIP plan.'));
    } catch (e2) { showError(sErr, e2); }
  } }, h('h2', {}, 'Sales'), field('Event id', sEvent), field('Dt id', sDt), h('button', { type: 'submit', id: 'sales-go' }, 'Show sales'), sErr, report);

  const mine = items.dts.length ? h('ul', {}, items.dts.map(d => h('li', {},
    h('a', { href: `/app/events/${enc(d.event)}/dts/${enc(d.id)}`, 'data-link': true }, d.name), ' ',
    h('button', { type: 'button', class: 'secondary', onclick: () => { sEvent.value = d.event; sDt.value = d.id; salesForm.requestSubmit(); } }, 'Sales')))) : null;
  add(main, mine ? h('div', { class: 'card' }, h('h2', {}, 'Your dates'), mine) : null, venueForm, eventForm, dtForm, windowForm, salesForm);
}
