// @ts-check
// The ops console's page script: polls /api/overview, draws the lag of every consumer group as it changes, and
// drills into dead letters. Plain DOM, no framework; every value is set as text, never as HTML.

const POLL_MS = 2000;
/** How many polls of history the lag chart keeps (two minutes). */
const HISTORY = 60;
const COLORS = ['#1565c0', '#c62828', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f', '#4e342e', '#ad1457'];

/** @type {Map<string, number[]>} lag history per group, oldest first */
const lagHistory = new Map();
let selectedTopic = '';

/** @param {string} id */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

/** @param {string} path */
async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${body.message ?? response.status}`);
  return body;
}

/** @param {unknown} value @returns {string} */
function text(value) {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(text).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Fills a table from rows: a header of `columns` (key and title) and one row per item.
 * @param {HTMLElement} table
 * @param {{ key: string, title: string, num?: boolean, state?: boolean }[]} columns
 * @param {Record<string, unknown>[]} rows
 * @param {(row: Record<string, unknown>) => void} [onClick]
 */
function fillTable(table, columns, rows, onClick) {
  table.replaceChildren();
  const head = document.createElement('tr');
  for (const column of columns) {
    const th = document.createElement('th');
    th.textContent = column.title;
    head.append(th);
  }
  table.append(head);
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = columns.length;
    td.textContent = 'none';
    tr.append(td);
    table.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement('tr');
    for (const column of columns) {
      const td = document.createElement('td');
      const value = row[column.key];
      td.textContent = text(value);
      if (column.num) td.className = 'num';
      if (column.state) td.className = `state-${text(value)}`;
      td.dataset.key = column.key;
      tr.append(td);
    }
    if (onClick) {
      tr.className = 'clickable';
      tr.tabIndex = 0;
      tr.addEventListener('click', () => onClick(row));
      tr.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') onClick(row);
      });
    }
    table.append(tr);
  }
}

/** @param {Record<string, unknown>[]} groups */
function drawLag(groups) {
  for (const group of groups ?? []) {
    const name = text(group.id);
    const series = lagHistory.get(name) ?? [];
    series.push(Number(group.lag) || 0);
    if (series.length > HISTORY) series.shift();
    lagHistory.set(name, series);
  }
  const svg = $('lag-chart');
  const width = 800;
  const height = 220;
  const left = 50;
  const bottom = 20;
  const max = Math.max(1, ...[...lagHistory.values()].flat());
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  for (const fraction of [0, 0.5, 1]) {
    const y = height - bottom - fraction * (height - bottom - 10);
    const line = document.createElementNS(ns, 'line');
    line.setAttribute('class', 'axis');
    line.setAttribute('x1', String(left));
    line.setAttribute('x2', String(width));
    line.setAttribute('y1', String(y));
    line.setAttribute('y2', String(y));
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', '4');
    label.setAttribute('y', String(y + 4));
    label.textContent = String(Math.round(max * fraction));
    svg.append(line, label);
  }
  let index = 0;
  for (const [name, series] of lagHistory) {
    const color = COLORS[index++ % COLORS.length] ?? '#000';
    const step = (width - left) / (HISTORY - 1);
    const points = series
      .map((lag, i) => {
        const x = left + (HISTORY - series.length + i) * step;
        const y = height - bottom - (lag / max) * (height - bottom - 10);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(' ');
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', points);
    line.setAttribute('stroke', color);
    line.dataset.group = name;
    const title = document.createElementNS(ns, 'title');
    title.textContent = name;
    line.append(title);
    svg.append(line);
  }
  fillTable(
    $('lag-table'),
    [
      { key: 'id', title: 'consumer group' },
      { key: 'state', title: 'state' },
      { key: 'members', title: 'members', num: true },
      { key: 'topicNames', title: 'topics' },
      { key: 'lag', title: 'lag (records)', num: true },
    ],
    groups.map((group) => ({
      ...group,
      topicNames: /** @type {{ topic: string }[]} */ (group.topics ?? []).map((t) => t.topic),
    })),
  );
}

/** @param {Record<string, unknown>} row */
async function showDeadLetters(row) {
  selectedTopic = text(row.topic);
  $('dlq-record').hidden = true;
  $('dlq-records').hidden = false;
  $('dlq-records-title').textContent = `${selectedTopic}: open records, newest first`;
  const { records } = await getJson(`/api/dead-letters?topic=${encodeURIComponent(selectedTopic)}&limit=50`);
  fillTable(
    $('dlq-records-table'),
    [
      { key: 'address', title: 'address' },
      { key: 'deadLetteredAt', title: 'rejected at' },
      { key: 'code', title: 'error' },
      { key: 'dataset', title: 'dataset' },
      { key: 'key', title: 'key' },
      { key: 'detail', title: 'reason' },
    ],
    records,
    (record) => void showDeadLetter(record),
  );
}

/**
 * One dead letter in full (platform/dead-letters, DeadLetterDetail): its reason and where it came from, then its
 * value decoded through the registry where it could be, else a bounded preview of its bytes.
 * @param {Record<string, unknown>} record
 */
async function showDeadLetter(record) {
  const where = `${encodeURIComponent(text(record.topic ?? selectedTopic))}/${text(record.partition)}/${text(record.offset)}`;
  const detail = await getJson(`/api/dead-letters/${where}`);
  const view = detail.deadLetter ?? {};
  const reason = $('dlq-record-reason');
  reason.replaceChildren();
  for (const name of [
    'address',
    'stage',
    'agency',
    'code',
    'detail',
    'agreement',
    'dataset',
    'source',
    'deadLetteredAt',
    'status',
  ]) {
    if (view[name] === null || view[name] === undefined) continue;
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = text(view[name]);
    dd.dataset.field = name;
    reason.append(dt, dd);
  }
  $('dlq-record-body').textContent = JSON.stringify({ key: detail.key, value: detail.value }, null, 2);
  $('dlq-record').hidden = false;
}

/**
 * Renders the platform status (platform/status/model.ts, PlatformStatus); a section that could not be read is null.
 * @param {Record<string, any>} overview
 */
function render(overview) {
  const groups = overview.groups ?? [];
  const deadLetters = overview.deadLetters ?? [];
  const agreements = overview.agreements ?? [];
  const operations = [
    ...(overview.operations?.inProgress ?? []).map((/** @type {any} */ op) => ({ ...op, state: 'running' })),
    ...(overview.operations?.recent ?? []).map((/** @type {any} */ op) => ({ ...op, state: op.outcome })),
  ];
  const cards = [
    ['agencies', (overview.agencies ?? []).length],
    ['datasets', (overview.datasets ?? []).length],
    ['agreements active', agreements.filter((/** @type {any} */ a) => a.active).length],
    ['degraded', agreements.filter((/** @type {any} */ a) => a.degraded).length, true],
    [
      'total lag',
      groups.reduce((/** @type {number} */ sum, /** @type {any} */ g) => sum + (Number(g.lag) || 0), 0),
    ],
    [
      'dead letters',
      deadLetters.reduce(
        (/** @type {number} */ sum, /** @type {any} */ d) => sum + (Number(d.records) || 0),
        0,
      ),
      true,
    ],
  ];
  const summary = $('summary');
  summary.replaceChildren(
    ...cards.map(([label, value, alarming]) => {
      const card = document.createElement('div');
      card.className = alarming && Number(value) > 0 ? 'card bad' : 'card';
      const b = document.createElement('b');
      b.textContent = String(value);
      b.dataset.card = String(label);
      const span = document.createElement('span');
      span.textContent = String(label);
      card.append(b, span);
      return card;
    }),
  );
  drawLag(groups);
  fillTable(
    $('dlq-table'),
    [
      { key: 'topic', title: 'dead-letter topic' },
      { key: 'records', title: 'records', num: true },
    ],
    deadLetters,
    (row) => void showDeadLetters(row),
  );
  fillTable(
    $('operations-table'),
    [
      { key: 'action', title: 'action' },
      { key: 'target', title: 'target' },
      { key: 'state', title: 'state', state: true },
      { key: 'principal', title: 'by' },
      { key: 'at', title: 'at' },
      { key: 'detail', title: 'detail' },
    ],
    operations,
  );
  fillTable(
    $('agreements-table'),
    [
      { key: 'id', title: 'agreement' },
      { key: 'subscriber', title: 'subscriber' },
      { key: 'dataset', title: 'dataset' },
      { key: 'status', title: 'status', state: true },
      { key: 'degradedReason', title: 'degraded' },
      { key: 'validTo', title: 'valid to' },
    ],
    agreements.map((/** @type {any} */ a) => ({ ...a, degradedReason: a.degraded?.reason ?? '' })),
  );
  fillTable(
    $('datasets-table'),
    [
      { key: 'id', title: 'dataset' },
      { key: 'owner', title: 'owner' },
      { key: 'records', title: 'records', num: true },
    ],
    overview.datasets ?? [],
  );
  fillTable(
    $('agencies-table'),
    [
      { key: 'code', title: 'code' },
      { key: 'nameVi', title: 'name' },
      { key: 'owns', title: 'owns' },
      { key: 'activeAgreements', title: 'subscriptions', num: true },
    ],
    (overview.agencies ?? []).map((/** @type {any} */ a) => ({ ...a, nameVi: a.name?.vi ?? a.name })),
  );
  const down = Object.entries(overview.services ?? {})
    .filter(([, service]) => !service.reachable)
    .map(([name, service]) => `${name}: ${service.problem?.message ?? 'unreachable'}`);
  $('freshness').textContent =
    `as of ${new Date(overview.at ?? Date.now()).toLocaleTimeString()} — refreshed every ${POLL_MS / 1000} s` +
    (down.length > 0 ? ` — NOT READ: ${down.join('; ')}` : '');
}

async function poll() {
  try {
    render(await getJson('/api/overview'));
  } catch (error) {
    $('freshness').textContent =
      `could not refresh: ${error instanceof Error ? error.message : String(error)}`;
  }
  setTimeout(() => void poll(), POLL_MS);
}

void poll();
