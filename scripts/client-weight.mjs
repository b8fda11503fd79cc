// What a browser downloads to show and hydrate each page first, raw and compressed with brotli
// (quality 11, as scripts/precompress.mjs writes them): the main WASM module, its JS glue, the
// stylesheet, and — with `cargo leptos build --release --split` — the split loader and the
// chunks of that page's lazy route (from the split manifest, which the server also reads to name
// them in the page). Run after the release build: `node scripts/client-weight.mjs [target/site]`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const pkg = join(process.argv[2] ?? 'target/site', 'pkg');
const names = readdirSync(pkg);
const sizes = new Map();
function size(name) {
  if (!sizes.has(name)) {
    const data = readFileSync(join(pkg, name));
    const br = brotliCompressSync(data, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
    }).length;
    sizes.set(name, { raw: data.length, br });
  }
  return sizes.get(name);
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
function total(files) {
  return files.map(size).reduce((a, s) => ({ raw: a.raw + s.raw, br: a.br + s.br }), { raw: 0, br: 0 });
}

const main = names.filter((f) => /^connections\.(.+\.)?(wasm|js|css)$/.test(f));
const loader = names.filter((f) => /^__wasm_split\..*\.js$/.test(f));
console.log('file | bytes | brotli');
for (const f of [...main, ...loader]) console.log(`${f} | ${size(f).raw} | ${size(f).br}`);
const shared = total([...main, ...loader]);
console.log(`main module, glue, stylesheet and split loader | ${shared.raw} | ${shared.br} (${kib(shared.br)})`);

const manifestName = names.find((f) => /^__wasm_split_manifest.*\.json$/.test(f));
if (!manifestName) {
  console.log('(not split: build with --split to see each page)');
  process.exit(0);
}
const manifest = JSON.parse(readFileSync(join(pkg, manifestName), 'utf8'));
const file = (stem) => names.find((f) => f === `${stem}.wasm` || (f.startsWith(`${stem}.`) && f.endsWith('.wasm')));
const css = total(main.filter((f) => f.endsWith('.css')));
console.log('\npage (lazy route) | chunks | bytes | brotli | first download, brotli | of which WASM + JS');
const rows = Object.entries(manifest).map(([route, chunks]) => {
  // The manifest lists the page's own module (`split_<route>`) among its chunks; a Set keeps
  // it from being counted twice.
  const files = [...new Set([...chunks.map(file), file(`split_${route}`)].filter(Boolean))];
  const t = total(files);
  return { route: route.replace(/^__/, '').replace(/_view_\d+$/, ''), n: files.length, t };
});
rows.sort((a, b) => a.t.br - b.t.br);
for (const r of rows) {
  console.log(`${r.route} | ${r.n} | ${r.t.raw} | ${r.t.br} | ${shared.br + r.t.br} (${kib(shared.br + r.t.br)}) | ${shared.br + r.t.br - css.br}`);
}
