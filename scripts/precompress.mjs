// Writes `<file>.br` (brotli, quality 11) and `<file>.gz` (gzip, level 9) beside every client
// file in `<site>/pkg` (the WASM module, its JS glue, the stylesheet). The server sends them as
// they are to browsers that accept them (`ServeDir::precompressed_br`), instead of compressing
// 3.6 MB on the fly at a lower quality for every download. Run after `cargo leptos build
// --release` (scripts/run.sh and scripts/test.sh do): `node scripts/precompress.mjs [target/site]`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const pkg = join(process.argv[2] ?? 'target/site', 'pkg');
for (const name of readdirSync(pkg).filter((f) => /\.(wasm|js|css)$/.test(f))) {
  const file = join(pkg, name);
  const data = readFileSync(file);
  const br = brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
  writeFileSync(`${file}.br`, br);
  writeFileSync(`${file}.gz`, gzipSync(data, { level: 9 }));
  console.log(`${file}: ${data.length} bytes, ${br.length} brotli`);
}
