/**
 * R3.10 classroom QR codes: a short-lived token signed with HMAC-SHA256 under a per-class secret and
 * bound to the class, the session and one time window (policy `qrTokenWindowSeconds`). The code shown
 * in the classroom rotates every window; a token from an earlier window is expired.
 *
 * Format: `q1.<classId b64url>.<sessionId b64url>.<window base36>.<mac b64url>`; the class and session
 * travel in clear only so a refusal can say which binding failed (neither is personal data).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 'q1';
const MAC_BYTES = 16;

export type QrRefusalCode = 'QR_TOKEN_INVALID' | 'QR_TOKEN_EXPIRED' | 'QR_TOKEN_OTHER_CLASS' | 'QR_TOKEN_OTHER_SESSION';

export type QrVerification = { ok: true; window: number } | { ok: false; code: QrRefusalCode; detail: string };

/** A fresh class secret (32 random bytes, hex). Stored only encrypted. */
export function newQrSecret(): string {
  return randomBytes(32).toString('hex');
}

/** Index of the time window containing `at`. */
export function qrWindow(at: number, windowSeconds: number): number {
  if (!Number.isInteger(windowSeconds) || windowSeconds < 1) throw new Error('windowSeconds must be a positive integer');
  return Math.floor(at / (windowSeconds * 1000));
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8');

function mac(secretHex: string, classId: string, sessionId: string, window: number): Buffer {
  return createHmac('sha256', Buffer.from(secretHex, 'hex'))
    .update(`${VERSION}|${classId}|${sessionId}|${window}`)
    .digest()
    .subarray(0, MAC_BYTES);
}

export interface IssuedQrToken {
  token: string;
  window: number;
  validFrom: number;
  validUntil: number;
}

/** The token of the window containing `at`. */
export function issueQrToken(secretHex: string, classId: string, sessionId: string, at: number, windowSeconds: number): IssuedQrToken {
  const window = qrWindow(at, windowSeconds);
  const token = [VERSION, b64(classId), b64(sessionId), window.toString(36), mac(secretHex, classId, sessionId, window).toString('base64url')].join('.');
  return { token, window, validFrom: window * windowSeconds * 1000, validUntil: (window + 1) * windowSeconds * 1000 };
}

/** Reads the class a token claims to be for, without trusting it (to pick the secret). */
export function qrTokenClass(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 5 || parts[0] !== VERSION) return undefined;
  try {
    return unb64(parts[1]!);
  } catch {
    return undefined;
  }
}

/**
 * Verifies a token for `expected` class and session at time `at`: the bindings, the signature under
 * the class's secret, then the window (only the current window is accepted).
 */
export function verifyQrToken(
  secretHex: string,
  token: string,
  expected: { classId: string; sessionId: string },
  at: number,
  windowSeconds: number,
): QrVerification {
  const parts = token.split('.');
  if (parts.length !== 5 || parts[0] !== VERSION || !/^[0-9a-z]{1,12}$/.test(parts[3]!)) {
    return { ok: false, code: 'QR_TOKEN_INVALID', detail: 'not a check-in token' };
  }
  const classId = unb64(parts[1]!);
  const sessionId = unb64(parts[2]!);
  const window = parseInt(parts[3]!, 36);
  if (classId !== expected.classId) return { ok: false, code: 'QR_TOKEN_OTHER_CLASS', detail: 'the token is for another class' };
  if (sessionId !== expected.sessionId) return { ok: false, code: 'QR_TOKEN_OTHER_SESSION', detail: 'the token is for another session' };
  const given = Buffer.from(parts[4]!, 'base64url');
  const want = mac(secretHex, classId, sessionId, window);
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    return { ok: false, code: 'QR_TOKEN_INVALID', detail: 'signature does not verify' };
  }
  const current = qrWindow(at, windowSeconds);
  if (window < current) return { ok: false, code: 'QR_TOKEN_EXPIRED', detail: 'the code has rotated; scan the current one' };
  if (window > current) return { ok: false, code: 'QR_TOKEN_INVALID', detail: 'token is not valid yet' };
  return { ok: true, window };
}

/** Digest kept instead of the token itself (replay detection, audit). */
export function qrTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
