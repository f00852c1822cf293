// Regenerates src/text/patterns.rs from the official twitter-text JavaScript implementation
// (npm twitter-text 3.1.0 with twemoji-parser 11.0.2), so that konektly counts exactly as X does.
//
//   cd /tmp/tt && npm install twitter-text@3.1.0 && NODE_PATH=/tmp/tt/node_modules node tools/gen-twitter-text.js > src/text/patterns.rs
//
// JavaScript regexes without the `u` flag work on UTF-16 code units: surrogate pairs are joined
// back into code points here, and escapes are rewritten in the syntax of the `fancy-regex` crate.
// The `i` flag is expanded here into explicit classes with JavaScript's own case mapping (a
// non-ASCII letter never matches an ASCII one: `ſ` is not `s`, the Kelvin sign is not `k`),
// because the regex crate's Unicode case folding would match more than X does.
const tt = require('twitter-text');
const emoji = require('twemoji-parser/dist/lib/regex').default;

const hex = (n) => n.toString(16).toUpperCase();

// ECMAScript Canonicalize(ch) for a non-unicode, ignoreCase regex.
const canon = (u) => {
  const up = String.fromCharCode(u).toUpperCase();
  if (up.length !== 1) return u;
  const cu = up.charCodeAt(0);
  if (u >= 128 && cu < 128) return u;
  return cu;
};
const groups = new Map();
for (let u = 0; u < 0x10000; u++) {
  if (u >= 0xd800 && u <= 0xdfff) continue;
  const c = canon(u);
  if (!groups.has(c)) groups.set(c, []);
  groups.get(c).push(u);
}
const equivalents = (u) => (u >= 0xd800 && u <= 0xdfff) ? [u] : groups.get(canon(u));
// Closes [start, end] ranges under case equivalence and merges them.
function closeRanges(items) {
  const set = new Set();
  for (const [a, b] of items) for (let u = a; u <= b; u++) for (const e of equivalents(u)) set.add(e);
  const sorted = [...set].sort((x, y) => x - y);
  const out = [];
  for (const u of sorted) {
    if (out.length && out[out.length - 1][1] === u - 1) out[out.length - 1][1] = u;
    else out.push([u, u]);
  }
  return out;
}
const cp = (hi, lo) => 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
const isHigh = (u) => u >= 0xd800 && u <= 0xdbff;

// Parses a JS character class body into [start, end] code-unit ranges plus a negation flag.
function classItems(body) {
  const items = [];
  let i = 0;
  const unit = () => {
    if (body[i] === '\\') {
      const c = body[i + 1];
      if (c === 'u') { const v = parseInt(body.slice(i + 2, i + 6), 16); i += 6; return v; }
      if (c === 'x') { const v = parseInt(body.slice(i + 2, i + 4), 16); i += 4; return v; }
      if (c === 't') { i += 2; return 9; }
      if (c === 'n') { i += 2; return 10; }
      if (/[a-zA-Z0-9]/.test(c)) throw new Error('unsupported class escape \\' + c);
      i += 2; return c.charCodeAt(0);
    }
    const v = body.charCodeAt(i); i += 1; return v;
  };
  while (i < body.length) {
    const a = unit();
    if (body[i] === '-' && i + 1 < body.length) { i += 1; const b = unit(); items.push([a, b]); }
    else items.push([a, a]);
  }
  return items;
}

function emitCp(v) { return '\\x{' + hex(v) + '}'; }
function emitClass(items, negated) {
  return '[' + (negated ? '^' : '') + items.map(([a, b]) => a === b ? emitCp(a) : emitCp(a) + '-' + emitCp(b)).join('') + ']';
}

// Converts a JS (non-unicode) regex source to fancy-regex syntax.
function convert(src, ignoreCase) {
  let out = '';
  let i = 0;
  const readClass = () => { // at '['
    let j = i + 1; let body = '';
    while (src[j] !== ']') { if (src[j] === '\\') { body += src[j] + src[j + 1]; j += 2; } else { body += src[j]; j += 1; } }
    const negated = body.startsWith('^');
    const items = classItems(negated ? body.slice(1) : body);
    i = j + 1;
    return { items, negated };
  };
  const readUnit = () => { // a \uXXXX escape at i, or null
    if (src[i] === '\\' && src[i + 1] === 'u') { const v = parseInt(src.slice(i + 2, i + 6), 16); return v; }
    return null;
  };
  while (i < src.length) {
    const u = readUnit();
    if (u !== null && isHigh(u)) {
      i += 6;
      if (src[i] === '[') {
        const { items, negated } = readClass();
        if (negated) throw new Error('negated low-surrogate class');
        out += emitClass(items.map(([a, b]) => [cp(u, a), cp(u, b)]), false);
      } else {
        const lo = readUnit();
        if (lo === null) throw new Error('lone high surrogate at ' + i);
        i += 6;
        out += emitCp(cp(u, lo));
      }
      continue;
    }
    const literal = (v) => {
      const eq = ignoreCase ? equivalents(v) : [v];
      if (eq.length === 1) return emitCp(v);
      // ASCII letters whose Unicode folding adds nothing keep the fast `(?i)` path.
      if (v < 128 && !/[sk]/i.test(String.fromCharCode(v))) return emitCp(v);
      return '(?-i:' + emitClass(eq.map((e) => [e, e]), false) + ')';
    };
    if (u !== null) { out += literal(u); i += 6; continue; }
    if (src[i] === '[') {
      let { items, negated } = readClass();
      if (ignoreCase) {
        out += '(?-i:' + emitClass(closeRanges(items), negated) + ')';
        continue;
      }
      if (items.some(([a, b]) => isHigh(a) || isHigh(b) || (a < 0xdc00 && b > 0xdfff))) {
        // A class over whole UTF-16 units that spans surrogates: keep its BMP part; an astral
        // character is then one unit short of what JS sees, which only negated classes reach.
        if (!negated) throw new Error('class with surrogates');
      }
      out += emitClass(items, negated);
      continue;
    }
    if (src[i] === '\\' && src[i + 1] === 'x') { out += literal(parseInt(src.slice(i + 2, i + 4), 16)); i += 4; continue; }
    if (src[i] === '\\') {
      if (/[a-zA-Z0-9]/.test(src[i + 1])) throw new Error('unsupported escape \\' + src[i + 1]);
      out += src[i] + src[i + 1]; i += 2; continue;
    }
    if (src[i] === '.') throw new Error('unescaped dot: its line terminators differ');
    if (/[a-zA-Z\u0080-\uffff]/.test(src[i])) { out += literal(src.charCodeAt(i)); i += 1; continue; }
    out += src[i]; i += 1;
  }
  return out;
}

function rust(name, doc, re, flags) {
  const pat = (flags.includes('i') ? '(?i)' : '') + convert(re.source, flags.includes('i'));
  if (pat.includes('"#')) throw new Error('pattern contains "#');
  return `/// ${doc}\npub(crate) const ${name}: &str = r#"${pat}"#;\n`;
}

const r = tt.regexen;
let out = `// @generated by tools/gen-twitter-text.js from twitter-text 3.1.0 and twemoji-parser 11.0.2
// (Copyright Twitter, Inc.; Apache License 2.0 and MIT). Do not edit by hand.
//! The official twitter-text patterns, in fancy-regex syntax.

`;
out += rust('EXTRACT_URL', 'twitter-text `extractUrl`: $2 preceding char, $3 URL, $4 protocol, $5 domain, $7 path.', r.extractUrl, r.extractUrl.flags);
out += rust('VALID_ASCII_DOMAIN', 'twitter-text `validAsciiDomain`.', r.validAsciiDomain, r.validAsciiDomain.flags);
out += rust('VALID_TCO_URL', 'twitter-text `validTcoUrl`.', r.validTcoUrl, r.validTcoUrl.flags);
out += rust('INVALID_URL_WITHOUT_PROTOCOL_PRECEDING_CHARS', 'twitter-text `invalidUrlWithoutProtocolPrecedingChars`.', r.invalidUrlWithoutProtocolPrecedingChars, r.invalidUrlWithoutProtocolPrecedingChars.flags);
out += rust('EMOJI', 'twemoji-parser 11.0.2 emoji sequences.', emoji, emoji.flags);
process.stdout.write(out);
