// What a browser downloads for the first page, raw and compressed with brotli (quality 11, as a
// server or CDN precompresses it): the WASM module, its JS glue and the stylesheet. Run after
// `cargo leptos build --release`: `node scripts/client-weight.mjs [target/site]`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const site = process.argv[2] ?? 'target/site';
const files = readdirSync(join(site, 'pkg'))
  .filter((f) => /\.(wasm|js|css)$/.test(f))
  .map((f) => join(site, 'pkg', f));
let raw = 0;
let br = 0;
console.log('file | bytes | brotli');
for (const f of files) {
  const data = readFileSync(f);
  const size = brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: statSync(f).size },
  }).length;
  raw += data.length;
  br += size;
  console.log(`${f} | ${data.length} | ${size}`);
}
console.log(`total | ${raw} | ${br} (${(br / 1024).toFixed(1)} KiB brotli)`);
