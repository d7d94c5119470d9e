// kmvec.js - parses the `kmvec` blocks of docs/CRYPTO.md (format: its
// "Vector format" section) into objects; repeated names become arrays.
const REPEATED = new Set(['item_id', 'msg', 'adaptor_secret']);

export function parseKmvec(markdown) {
  const out = [];
  const re = /```kmvec\n([\s\S]*?)```/g;
  let m;
  while ((m = re.exec(markdown)) !== null) {
    const v = {};
    for (const line of m[1].split('\n')) {
      if (line === '') continue;
      const i = line.indexOf(': ');
      const [name, value] = i < 0 ? [line.replace(/:$/, ''), ''] : [line.slice(0, i), line.slice(i + 2)];
      if (name === 'vector') v.vector = value;
      else if (REPEATED.has(name)) (v[name] ??= []).push(value);
      else v[name] = value;
    }
    out.push(v);
  }
  return out;
}
