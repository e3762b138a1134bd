/**
 * myst-nb's ``{glue:text}`name:spec` `` in TypeScript: the stored ``text/plain`` is read as a Python
 * literal and formatted with Python's format-specification mini-language, as
 * ``myst_nb.core.variables.format_plain_text`` does (``format(literal_eval(text), spec)``, the value
 * made an int for ``b c d o x X`` and a float for ``e E f F g G n %``).
 *
 * Floats are formatted from their exact binary value and rounded half to even, as CPython does
 * (JavaScript's ``toFixed`` rounds an exact tie up: ``(0.125).toFixed(2)`` is ``0.13``, Python's
 * ``f"{0.125:.2f}"`` is ``0.12``).
 */

/** A Python value read from a ``text/plain`` repr: an int, a float or (anything else) a str. */
export type PyValue = { kind: 'int'; value: bigint } | { kind: 'float'; value: number } | { kind: 'str'; value: string };

const INT = /^[+-]?(0|[1-9](_?\d)*)$/;
const FLOAT = /^[+-]?((\d(_?\d)*)?\.\d(_?\d)*|\d(_?\d)*\.?)([eE][+-]?\d(_?\d)*)?$/;
const STRING = /^(['"])(.*)\1$/s;

/** What ``ast.literal_eval(text)`` gives for the reprs ``glue`` stores: a number, a quoted str or the text itself. */
export function parseLiteral(text: string): PyValue {
  const t = text.trim();
  if (INT.test(t)) {
    return { kind: 'int', value: BigInt(t.replace(/_/g, '')) };
  }
  if (FLOAT.test(t)) {
    return { kind: 'float', value: Number(t.replace(/_/g, '')) };
  }
  const quoted = STRING.exec(t);
  if (quoted && !quoted[2].includes(quoted[1])) {
    return { kind: 'str', value: quoted[2].replace(/\\(['"\\])/g, '$1') };
  }
  return { kind: 'str', value: text };
}

interface Spec {
  fill: string;
  align: string;
  sign: string;
  z: boolean;
  alternate: boolean;
  width: number;
  grouping: string;
  precision: number | null;
  type: string;
}

const SPEC = /^(?:(.)?([<>=^]))?([+\- ])?(z)?(#)?(0)?(\d+)?([,_])?(?:\.(\d+))?([bcdeEfFgGnosxX%])?$/s;

function parseSpec(spec: string): Spec {
  const m = SPEC.exec(spec);
  if (!m) {
    throw new Error(`format spec: ${JSON.stringify(spec)} is not a Python format specification`);
  }
  const zero = m[6] === '0';
  return {
    fill: m[1] ?? (zero && !m[2] ? '0' : ' '),
    align: m[2] ?? (zero ? '=' : ''),
    sign: m[3] ?? '-',
    z: m[4] === 'z',
    alternate: m[5] === '#',
    width: m[7] ? Number(m[7]) : 0,
    grouping: m[8] ?? '',
    precision: m[9] !== undefined ? Number(m[9]) : null,
    type: m[10] ?? ''
  };
}

/** The exact decimal digits of a finite x > 0: x = 0.<digits> * 10**point, digits without trailing zeros. */
function exactDigits(x: number): { digits: string; point: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & 0xfffffffffffffn;
  let exponent = biased - 1075;
  if (biased === 0) {
    exponent = -1074;
  } else {
    mantissa |= 1n << 52n;
  }
  let digits: string;
  let point: number;
  if (exponent >= 0) {
    digits = (mantissa << BigInt(exponent)).toString();
    point = digits.length;
  } else {
    digits = (mantissa * 5n ** BigInt(-exponent)).toString();
    point = digits.length + exponent;
  }
  const stripped = digits.replace(/0+$/, '');
  return { digits: stripped, point };
}

/** ``digits`` rounded half to even to its first ``keep`` digits (keep may be <= 0): the same form back. */
function roundDigits(digits: string, point: number, keep: number): { digits: string; point: number } {
  if (keep >= digits.length) {
    return { digits, point };
  }
  if (keep < 0) {
    return { digits: '', point };
  }
  const kept = digits.slice(0, keep);
  const first = digits.charCodeAt(keep) - 48;
  const rest = digits.slice(keep + 1);
  const lastKeptOdd = keep > 0 && (digits.charCodeAt(keep - 1) - 48) % 2 === 1;
  const up = first > 5 || (first === 5 && (/[1-9]/.test(rest) || lastKeptOdd));
  if (!up) {
    return { digits: kept.replace(/0+$/, ''), point };
  }
  const carried = (BigInt(kept || '0') + 1n).toString();
  if (carried.length > keep) {  // 999 -> 1000 (or a first digit out of nothing)
    return { digits: carried.replace(/0+$/, ''), point: point + 1 };
  }
  return { digits: carried.padStart(keep, '0').replace(/0+$/, ''), point };
}

/** x >= 0 in fixed notation with ``decimals`` digits after the point. */
function fixed(x: number, decimals: number): string {
  if (x === 0) {
    return decimals > 0 ? '0.' + '0'.repeat(decimals) : '0';
  }
  const exact = exactDigits(x);
  const r = roundDigits(exact.digits, exact.point, exact.point + decimals);
  const all = r.digits.padEnd(r.point + decimals, '0');
  let whole: string;
  let frac: string;
  if (r.point > 0) {
    whole = all.slice(0, r.point);
    frac = all.slice(r.point, r.point + decimals);
  } else {
    whole = '0';
    frac = ('0'.repeat(-r.point) + r.digits).padEnd(decimals, '0').slice(0, decimals);
  }
  return decimals > 0 ? `${whole}.${frac}` : whole;
}

/** x >= 0 rounded to ``significant`` digits: its digits (exactly that many) and its decimal exponent. */
function significantDigits(x: number, significant: number): { digits: string; exp: number } {
  if (x === 0) {
    return { digits: '0'.repeat(significant), exp: 0 };
  }
  const exact = exactDigits(x);
  const r = roundDigits(exact.digits, exact.point, significant);
  return { digits: r.digits.padEnd(significant, '0'), exp: r.point - 1 };
}

function scientific(digits: string, exp: number, alternate: boolean, upper: boolean): string {
  const mantissa = digits.length > 1 || alternate ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = `${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return `${mantissa}${upper ? 'E' : 'e'}${e}`;
}

/** Python's ``repr`` of a finite float >= 0: the shortest digits that read back as x. */
function shortestRepr(x: number): string {
  if (x === 0) {
    return '0.0';
  }
  const [mant, e] = x.toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(e);
  if (exp < -4 || exp >= 16) {
    return scientific(digits, exp, false, false);
  }
  if (exp < 0) {
    return '0.' + '0'.repeat(-exp - 1) + digits;
  }
  const whole = digits.padEnd(exp + 1, '0').slice(0, exp + 1);
  const frac = digits.slice(exp + 1);
  return `${whole}.${frac || '0'}`;
}

/** 'g' with ``p`` significant digits; ``noType``: the empty type with a precision (scientific from exp >= p - 1, fixed keeps a decimal). */
function general(x: number, p: number, alternate: boolean, upper: boolean, noType: boolean): string {
  const precision = p === 0 ? 1 : p;
  const { digits, exp } = significantDigits(x, precision);
  let text: string;
  if (-4 <= exp && exp < (noType ? precision - 1 : precision)) {
    text = fixed(x, Math.max(precision - 1 - exp, 0));
    if (!alternate && text.includes('.')) {
      text = text.replace(/0+$/, '').replace(/\.$/, noType ? '.0' : '');
    } else if (noType && !text.includes('.')) {
      text += '.0';
    }
  } else {
    text = scientific(digits, exp, alternate, upper);
    if (!alternate) {
      text = text.replace(/\.?0+(?=[eE])/, '');
    }
  }
  return text;
}

function group(whole: string, separator: string): string {
  return separator ? whole.replace(/\B(?=(\d{3})+(?!\d))/g, separator) : whole;
}

function pad(body: string, sign: string, spec: Spec, defaultAlign: string): string {
  const length = sign.length + body.length;
  if (length >= spec.width) {
    return sign + body;
  }
  const gap = spec.width - length;
  const fill = spec.fill;
  switch (spec.align || defaultAlign) {
    case '<':
      return sign + body + fill.repeat(gap);
    case '^':
      return fill.repeat(Math.floor(gap / 2)) + sign + body + fill.repeat(gap - Math.floor(gap / 2));
    case '=':
      return sign + fill.repeat(gap) + body;
    default:
      return fill.repeat(gap) + sign + body;
  }
}

function signOf(negative: boolean, spec: Spec): string {
  if (negative) {
    return '-';
  }
  return spec.sign === '+' ? '+' : spec.sign === ' ' ? ' ' : '';
}

function formatFloat(value: number, spec: Spec): string {
  const upper = oneOf(spec.type, 'EFG');
  let x = spec.type === '%' ? value * 100 : value;
  let negative = x < 0 || Object.is(x, -0);
  x = Math.abs(x);
  let body: string;
  if (!Number.isFinite(x)) {
    body = Number.isNaN(x) ? 'nan' : 'inf';
    negative = negative && !Number.isNaN(value);
    body = upper ? body.toUpperCase() : body;
  } else {
    const p = spec.precision;
    switch (spec.type) {
      case 'f':
      case 'F':
      case '%':
        body = fixed(x, p ?? 6);
        if (spec.alternate && !body.includes('.')) {
          body += '.';
        }
        break;
      case 'e':
      case 'E': {
        const s = significantDigits(x, (p ?? 6) + 1);
        body = scientific(s.digits, s.exp, spec.alternate, upper);
        break;
      }
      case 'g':
      case 'G':
      case 'n':
        body = general(x, p ?? 6, spec.alternate, upper, false);
        break;
      default:
        body = p === null ? shortestRepr(x) : general(x, p, spec.alternate, false, true);
    }
    if (spec.z && negative && !/[1-9]/.test(body.split(/[eE]/)[0])) {
      negative = false;
    }
    const [whole, ...rest] = body.split(/(?=[.eE%])/);
    if (/^\d+$/.test(whole)) {
      body = group(whole, spec.grouping) + rest.join('');
    }
  }
  if (spec.type === '%') {
    body += '%';
  }
  return pad(body, signOf(negative, spec), spec, '>');
}

function formatInt(value: bigint, spec: Spec): string {
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  let body: string;
  let prefix = '';
  switch (spec.type) {
    case 'b':
      body = magnitude.toString(2);
      prefix = spec.alternate ? '0b' : '';
      break;
    case 'o':
      body = magnitude.toString(8);
      prefix = spec.alternate ? '0o' : '';
      break;
    case 'x':
    case 'X':
      body = magnitude.toString(16);
      body = spec.type === 'X' ? body.toUpperCase() : body;
      prefix = spec.alternate ? (spec.type === 'X' ? '0X' : '0x') : '';
      break;
    case 'c':
      return pad(String.fromCodePoint(Number(value)), '', spec, '<');
    default:
      body = group(magnitude.toString(), spec.grouping);
  }
  return pad(body, signOf(negative, spec) + prefix, spec, '>');
}

function formatStr(value: string, spec: Spec): string {
  if (spec.type !== '' && spec.type !== 's') {
    throw new Error(`format spec: unknown format code '${spec.type}' for a str`);
  }
  const text = spec.precision === null ? value : [...value].slice(0, spec.precision).join('');
  return pad(text, '', spec, '<');
}

/** Whether ``type`` (one character, or '' for none) is one of ``codes``. */
function oneOf(type: string, codes: string): boolean {
  return type !== '' && codes.includes(type);
}

/** ``str(value)`` in Python. */
function pyStr(value: PyValue): string {
  if (value.kind === 'float') {
    const x = value.value;
    if (Number.isNaN(x)) {
      return 'nan';
    }
    const body = Number.isFinite(x) ? shortestRepr(Math.abs(x)) : 'inf';
    return (x < 0 || Object.is(x, -0) ? '-' : '') + body;
  }
  return value.value.toString();
}

/**
 * The text myst-nb shows for ``{glue:text}`name:spec` `` given the glued ``text/plain``
 * (``spec`` "" when the role gives none). Throws on a spec Python would refuse.
 */
export function formatGlued(plain: string, spec: string): string {
  let value = parseLiteral(plain);
  if (spec === '') {
    return pyStr(value);
  }
  const parsed = parseSpec(spec);
  const type = spec[spec.length - 1];
  if (type === 's') {
    value = { kind: 'str', value: pyStr(value) };
  } else if (oneOf(type, 'bcdoxX')) {
    if (value.kind === 'str') {
      throw new Error(`format spec: ${JSON.stringify(plain)} is not a number for '${spec}'`);
    }
    value = { kind: 'int', value: value.kind === 'int' ? value.value : BigInt(Math.trunc(value.value)) };
  } else if (oneOf(type, 'eEfFgGn%')) {
    if (value.kind === 'str') {
      throw new Error(`format spec: ${JSON.stringify(plain)} is not a number for '${spec}'`);
    }
    value = { kind: 'float', value: Number(value.value) };
  }
  switch (value.kind) {
    case 'int':
      if (oneOf(parsed.type, 'eEfFgG%')) {
        return formatFloat(Number(value.value), parsed);
      }
      if (parsed.precision !== null) {
        throw new Error(`format spec: precision not allowed in an integer format ('${spec}')`);
      }
      return formatInt(value.value, parsed);
    case 'float':
      if (oneOf(parsed.type, 'bcdoxX')) {
        throw new Error(`format spec: unknown format code '${parsed.type}' for a float`);
      }
      return formatFloat(value.value, parsed);
    default:
      return formatStr(value.value, parsed);
  }
}
