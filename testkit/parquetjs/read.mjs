// Reads each Parquet file named after argv[2] with the reader argv[2] names
// and prints, for each in turn, one JSON object {"rows": [...], "meta":
// {...}} on a line: every row as an object (nested
// groups as objects, lists as arrays, maps as objects), 64-bit integers as
// exact JSON numbers, timestamps as ISO 8601 text with milliseconds, and
// for hyparquet the file's footer (its FileMetaData, as hyparquet parses it).
import fs from 'node:fs';
import { createRequire } from 'node:module';

const req = createRequire(process.env.PARQUET_JS_DIR + '/package.json');
const [reader, ...paths] = process.argv.slice(2);

// Bigints and odd values become marked strings that the writer below
// unquotes: JSON.stringify cannot print a bigint as a number.
const mark = '\u0000big:';
function plain(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return mark + v.toString();
  if (v instanceof Date) return isNaN(v) ? 'invalid date' : v.toISOString();
  if (v instanceof Uint8Array) return { binary: Buffer.from(v).toString('base64') };
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, e]) => [k, plain(e)]));
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Array.from(v, plain);
  if (typeof v === 'object') return members(Object.entries(v).map(([k, e]) => [k, plain(e)]));
  return v;
}

// members is the object of entries whose value is not null.
function members(entries) {
  const o = {};
  for (const [k, v] of entries) if (v !== null && v !== undefined) o[k] = v;
  return o;
}

// arrowValue converts a value of an Arrow JS vector by its declared type.
function arrowValue(arrow, type, v) {
  if (v === null || v === undefined) return null;
  const T = arrow.DataType;
  if (T.isTimestamp(type)) {
    if (type.unit !== arrow.TimeUnit.MILLISECOND) return 'timestamp unit ' + type.unit;
    return new Date(Number(v)).toISOString();
  }
  if (T.isInt(type)) return typeof v === 'bigint' ? mark + v.toString() : v;
  if (T.isList(type)) return Array.from(v, e => arrowValue(arrow, type.children[0].type, e));
  if (T.isStruct(type)) {
    return members(type.children.map(f => [f.name, arrowValue(arrow, f.type, v[f.name])]));
  }
  if (T.isMap(type)) {
    const [k, e] = type.children[0].type.children;
    return members(Array.from(v, ([key, val]) => [arrowValue(arrow, k.type, key), arrowValue(arrow, e.type, val)]));
  }
  if (T.isUtf8(type) || T.isBool(type)) return v;
  if (T.isDictionary(type)) return arrowValue(arrow, type.dictionary, v);
  return 'unexpected Arrow type ' + String(type);
}

async function read(buf) {
  if (reader === 'hyparquet') {
    const hp = await import(req.resolve('hyparquet'));
    const { compressors } = await import(req.resolve('hyparquet-compressors'));
    const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const metadata = hp.parquetMetadata(file);
    const rows = await hp.parquetReadObjects({ file, metadata, compressors });
    return { rows: rows.map(plain), meta: plain(metadata) };
  }
  if (reader === 'parquet-wasm') {
    const pw = req('parquet-wasm');
    const arrow = req('apache-arrow');
    const table = arrow.tableFromIPC(pw.readParquet(new Uint8Array(buf)).intoIPCStream());
    const cols = table.schema.fields.map((f, i) => [f, table.getChildAt(i)]);
    const rows = [];
    for (let r = 0; r < table.numRows; r++) {
      rows.push(members(cols.map(([f, col]) => [f.name, arrowValue(arrow, f.type, col.get(r))])));
    }
    const schema = table.schema.fields.map(f => ({ name: f.name, type: String(f.type), nullable: f.nullable }));
    return { rows, meta: { arrow_schema: schema } };
  }
  throw new Error('unknown reader ' + reader);
}

(async () => {
  for (const path of paths) {
    let out;
    try {
      out = await read(fs.readFileSync(path));
    } catch (e) {
      throw new Error(path + ': ' + ((e && e.stack) || e));
    }
    const text = JSON.stringify(out).replace(/"\\u0000big:(-?[0-9]+)"/g, '$1');
    await new Promise(ok => process.stdout.write(text + '\n', ok));
  }
})().catch(e => { process.stderr.write(String(e.message || e)); process.exit(1); });
