// Writes tests/fixtures/reference_lengths.json: generated texts and the official twitter-text
// 3.1.0 `parseTweet` result for each, so that tests compare konektly's count with X's own.
//
//   NODE_PATH=/tmp/tt/node_modules node tools/gen-reference-lengths.js > tests/fixtures/reference_lengths.json
const tt = require('twitter-text');
let seed = 42;
const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const pick = (a) => a[Math.floor(rand() * a.length)];
const pieces = [
  'a', 'Z', '9', ' ', ' ', '.', '/', '-', '_', '@', '#', '$', '(', ')', '?', '=', '&', ':', ',', '!', "'", '"',
  'http://', 'https://', 'www.', 'example.com', 'konektly.app', 't.co/abc123', 'x.com/jack?ref=1',
  'foo.bar.co.uk/path(1)', 'xn--bcher-kva.de', 'ex.pl', 'a.b', '.com', 'bücher.de', 'пример.рф',
  'é', 'e\u0301', 'ñ', 'Á', 'ß', 'ø', '故', '人', 'あ', '한', 'ك', 'ש', '\u0915',
  '😷', '🐱', '☺', '☺\uFE0F', '©', '®', '©\uFE0F', '™', '‼', '\uFE0F', '\uFE0E', '\u200D', '🏽', '👍🏽',
  '👨‍👩‍👧‍👦', '🇫🇷', '🇺', '1\u20E3', '#\uFE0F\u20E3', '*\u20E3', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '🤪', '🧕🏾', '🫠', '🥲',
  '\u2000', '\u200B', '\u2014', '\u2019', '\u2033', '\u2026', '\u00A0', '\u3000', '\u202A', '\u202C', '\u2066', '\u200F',
  '\uFEFF', '\uFFFE', '\n', '\t', '𝒳', '𠀀',
  'ſ', '\u212A', 'İ', 'ı', 'ＡＢＣ', 'ｃｏｍ', '。', '＠', '＃', 'http://ſ.com', 'https://\u212Aa.com', 'ftp://a.com',
  'HTTPS://A.COM', 'www.ſite.com', 'a.xn--p1ai', 'xn--bcher-kva.com', '(https://a.com/b_(c))', 'https://a.com/?q=1&x=%20',
  '@a.com', '$a.com', 'a@b.com', 'https://t.co/0123456789012345678901234567890123456789X', 'http://a.com:8080/p',
];
const out = [];
for (let i = 0; i < 5000; i++) {
  let s = '';
  const n = 1 + Math.floor(rand() * 14);
  for (let j = 0; j < n; j++) s += pick(pieces);
  const r = tt.parseTweet(s);
  out.push({ text: s, weightedLength: r.weightedLength, valid: r.valid });
}
// A few long ones around the limit.
for (let i = 0; i < 50; i++) {
  let s = '';
  while (s.length < 260 + i) s += pick(pieces);
  const r = tt.parseTweet(s);
  out.push({ text: s, weightedLength: r.weightedLength, valid: r.valid });
}
process.stdout.write(JSON.stringify(out, null, 0) + '\n');
