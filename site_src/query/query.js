// The SQL page (catalog.site.sqlpage): DuckDB-WASM, vendored beside this file, over the
// Parquet snapshots the build wrote here, with the catalog's own view definitions.
// Every address is relative to this file: the page works from any static host.
const here = (path) => new URL(path, import.meta.url).href;
const $ = (id) => document.getElementById(id);
const MAX_ROWS = 1000;

const ui = {
  query: $("catalog-sql-query"),
  asOf: $("catalog-sql-as-of"),
  run: $("catalog-sql-run"),
  now: $("catalog-sql-now"),
  status: $("catalog-sql-status"),
  result: $("catalog-sql-result"),
};

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(s);
  });
}

async function fetchOk(path) {
  const response = await fetch(here(path));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response;
}

async function start() {
  await loadScript(here("duckdb/arrow.min.js"));            // sets globalThis.Arrow, which the module reads
  const duckdb = await import(here("duckdb/duckdb-browser.js"));
  const worker = new Worker(here("duckdb/duckdb-browser-eh.worker.js"));
  const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
  await db.instantiate(here("duckdb/duckdb-eh.wasm"));
  await db.open({});
  const con = await db.connect();
  // Nothing from the internet: no extension is installed or loaded behind the reader's back.
  await con.query("SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;");
  for (const table of ["versions", "events"]) {
    const bytes = new Uint8Array(await (await fetchOk(`${table}.arrow`)).arrayBuffer());
    await con.insertArrowFromIPCStream(bytes, { name: `_${table}_snapshot` });
  }
  await con.query(await (await fetchOk("views.sql")).text());
  return con;
}

const TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(\.\d+)?)?$/;

function asOfSql(value) {
  if (!value) return "SET VARIABLE catalog_as_of = NULL;";
  const m = TIME.exec(value);
  if (!m) throw new Error(`not a time: ${value}`);
  return `SET VARIABLE catalog_as_of = TIMESTAMPTZ '${m[1]} ${m[2]}${m[3] || ":00"}+00';`;
}

function jsonable(value) {
  return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
}

function show(value, type) {
  if (value === null || value === undefined) return "";
  const Arrow = globalThis.Arrow;
  if (type && Arrow && type.typeId === Arrow.Type.Timestamp) {
    return new Date(Number(value)).toISOString().replace(".000Z", "Z");
  }
  if (type && Arrow && type.typeId === Arrow.Type.Date) return new Date(Number(value)).toISOString().slice(0, 10);
  if (typeof value === "bigint" || typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "string") return value;
  if (typeof value.toJSON === "function") return jsonable(value.toJSON());
  return jsonable(value);
}

function render(table) {
  const fields = table.schema.fields;
  const wrap = document.createElement("table");
  wrap.className = "catalog-sql-table";
  const head = wrap.createTHead().insertRow();
  for (const f of fields) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = f.name;
    head.appendChild(th);
  }
  const body = wrap.createTBody();
  const shown = Math.min(table.numRows, MAX_ROWS);
  const columns = fields.map((_, i) => table.getChildAt(i));
  for (let r = 0; r < shown; r++) {
    const row = body.insertRow();
    fields.forEach((f, i) => { row.insertCell().textContent = show(columns[i].get(r), f.type); });
  }
  ui.result.replaceChildren(wrap);
  const more = table.numRows > shown ? ` (the first ${shown} shown)` : "";
  return `${table.numRows} row${table.numRows === 1 ? "" : "s"}${more}`;
}

function remember() {
  const params = new URLSearchParams({ q: ui.query.value });
  if (ui.asOf.value) params.set("as_of", ui.asOf.value);
  history.replaceState(null, "", `#${params}`);
}

function recall() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("q")) ui.query.value = params.get("q");
  if (params.has("as_of")) ui.asOf.value = params.get("as_of");
  return params.has("q");
}

async function main() {
  const queued = recall();
  let con;
  try {
    con = await start();
  } catch (error) {
    ui.status.textContent = `DuckDB could not start here: ${error.message || error} ` +
      "(the page needs a web server, e.g. catalog serve, and a browser with WebAssembly)";
    ui.status.dataset.state = "error";
    return;
  }
  let running = Promise.resolve();
  const run = () => {
    running = running.then(async () => {
      ui.run.disabled = true;
      ui.status.dataset.state = "running";
      ui.status.textContent = "Running\u2026";
      const started = performance.now();
      try {
        await con.query(asOfSql(ui.asOf.value));
        const table = await con.query(ui.query.value);
        const counted = render(table);
        const when = ui.asOf.value ? ` as of ${ui.asOf.value.replace("T", " ")} UTC` : "";
        ui.status.textContent = `${counted}${when}, in ${Math.round(performance.now() - started)} ms.`;
        ui.status.dataset.state = "done";
        remember();
      } catch (error) {
        ui.result.replaceChildren();
        ui.status.textContent = `Error: ${error.message || error}`;
        ui.status.dataset.state = "error";
      } finally {
        ui.run.disabled = false;
      }
    });
    return running;
  };
  ui.run.addEventListener("click", run);
  ui.now.addEventListener("click", () => { ui.asOf.value = ""; run(); });
  ui.query.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  for (const button of document.querySelectorAll(".catalog-sql-example")) {
    button.addEventListener("click", () => { ui.query.value = button.dataset.sql; run(); });
  }
  ui.run.disabled = false;
  ui.status.dataset.state = "ready";
  ui.status.textContent = "Ready: pick a query or write one, then Run (Ctrl+Enter).";
  if (queued) run();
}

main();
