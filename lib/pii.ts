/**
 * Personal data at rest: resident ID numbers are looked up by a keyed hash (HMAC-SHA256) and kept
 * only as AES-256-GCM ciphertext; display uses masks that keep the last four characters.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

function keyBytes(key: string): Buffer {
  const b = /^[0-9a-fA-F]{64}$/.test(key) ? Buffer.from(key, 'hex') : Buffer.from(key, 'base64');
  if (b.length !== 32) throw new Error('keys must be 32 bytes (64 hex characters or base64)');
  return b;
}

export class Pii {
  private readonly refKey: Buffer;
  private readonly encKey: Buffer;
  constructor(opts: { personRefKey: string; piiKey: string }) {
    this.refKey = keyBytes(opts.personRefKey);
    this.encKey = keyBytes(opts.piiKey);
  }

  /** Pseudonymous, stable reference to a person: HMAC of the upper-cased ID number. */
  personRef(idNumber: string): string {
    return 'P' + createHmac('sha256', this.refKey).update(idNumber.trim().toUpperCase()).digest('hex').slice(0, 40);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.encKey, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64'), c.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  /**
   * Binary form for large payloads (settlement files): `pb1` magic, IV, tag, ciphertext — no text
   * encoding on the way, so a file costs its own size at rest and no large strings in memory.
   */
  encryptBytes(plain: Buffer): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.encKey, iv);
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([BYTES_MAGIC, iv, c.getAuthTag(), body]);
  }

  decryptBytes(token: Buffer): Buffer {
    if (!isEncryptedBytes(token)) throw new Error('unknown ciphertext format');
    const m = BYTES_MAGIC.length;
    const d = createDecipheriv('aes-256-gcm', this.encKey, token.subarray(m, m + 12));
    d.setAuthTag(token.subarray(m + 12, m + 28));
    return Buffer.concat([d.update(token.subarray(m + 28)), d.final()]);
  }

  decrypt(token: string): string {
    const [v, iv, tag, body] = token.split(':');
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('unknown ciphertext format');
    const d = createDecipheriv('aes-256-gcm', this.encKey, Buffer.from(iv, 'base64'));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64')), d.final()]).toString('utf8');
  }
}

const BYTES_MAGIC = Buffer.from('pb1', 'latin1');

/** Whether `b` is in the binary form of `Pii.encryptBytes` (else, for older rows, a `v1:` text token). */
export function isEncryptedBytes(b: Buffer): boolean {
  return b.length >= BYTES_MAGIC.length + 28 && b.subarray(0, BYTES_MAGIC.length).equals(BYTES_MAGIC);
}

/** Masks all but the last four characters. */
export function maskTail(value: string, keep = 4): string {
  if (value.length <= keep) return '*'.repeat(value.length);
  return '*'.repeat(value.length - keep) + value.slice(-keep);
}

/** Masks a name to its first character. */
export function maskName(name: string): string {
  const chars = Array.from(name);
  return chars.length <= 1 ? '*' : chars[0] + '*'.repeat(chars.length - 1);
}

/** GB 11643-1999 check of an 18-character resident ID number. */
export function isValidResidentId(id: string): boolean {
  if (!/^[0-9]{17}[0-9Xx]$/.test(id)) return false;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const checks = '10X98765432';
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * weights[i]!;
  return checks[sum % 11] === id[17]!.toUpperCase();
}
