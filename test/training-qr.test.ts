/** R3.10 building blocks: rotating HMAC check-in tokens and the haversine distance. */
import { haversineMeters } from '../lib/geo';
import { issueQrToken, newQrSecret, qrTokenClass, qrTokenHash, qrWindow, verifyQrToken } from '../lib/qr-token';
import { POLICY_VERSIONS } from '../policy/policy';

const W = POLICY_VERSIONS[0]!.qrTokenWindowSeconds;
const T0 = Date.UTC(2026, 2, 2, 1, 0, 0);
const secret = newQrSecret();
const cls = { classId: 'CLSAAA', sessionId: 'S01' };

describe('QR tokens', () => {
  test('R3.10: a token verifies for its class and session within its window', () => {
    const q = issueQrToken(secret, cls.classId, cls.sessionId, T0, W);
    expect(verifyQrToken(secret, q.token, cls, T0, W)).toEqual({ ok: true, window: qrWindow(T0, W) });
    expect(verifyQrToken(secret, q.token, cls, q.validUntil - 1, W).ok).toBe(true);
    expect(q.validUntil - q.validFrom).toBe(W * 1000);
    expect(qrTokenClass(q.token)).toBe(cls.classId);
  });

  test('R3.10: the code rotates each window and a token of an earlier window is expired', () => {
    const a = issueQrToken(secret, cls.classId, cls.sessionId, T0, W);
    const b = issueQrToken(secret, cls.classId, cls.sessionId, a.validUntil, W);
    expect(b.token).not.toBe(a.token);
    expect(verifyQrToken(secret, a.token, cls, a.validUntil, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_EXPIRED' });
    expect(verifyQrToken(secret, b.token, cls, a.validFrom, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_INVALID' });
  });

  test('R3.10: forged tokens are refused: wrong secret, altered window, altered MAC, garbage', () => {
    const q = issueQrToken(secret, cls.classId, cls.sessionId, T0, W);
    const forged = issueQrToken(newQrSecret(), cls.classId, cls.sessionId, T0, W);
    expect(verifyQrToken(secret, forged.token, cls, T0, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_INVALID' });
    const parts = q.token.split('.');
    const nextWindow = [...parts.slice(0, 3), (qrWindow(T0, W) + 1).toString(36), parts[4]].join('.');
    expect(verifyQrToken(secret, nextWindow, cls, T0 + W * 1000, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_INVALID' });
    const mac = parts[4]!;
    const flipped = [...parts.slice(0, 4), (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1)].join('.');
    expect(verifyQrToken(secret, flipped, cls, T0, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_INVALID' });
    for (const junk of ['', 'x', 'q1.a.b.c', 'q1....', `${q.token}.x`]) {
      expect(verifyQrToken(secret, junk, cls, T0, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_INVALID' });
    }
  });

  test('R3.10: a token of another session or another class is refused with its own reason', () => {
    const other = issueQrToken(secret, cls.classId, 'S02', T0, W);
    expect(verifyQrToken(secret, other.token, cls, T0, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_OTHER_SESSION' });
    const otherClass = issueQrToken(secret, 'CLSBBB', cls.sessionId, T0, W);
    expect(verifyQrToken(secret, otherClass.token, cls, T0, W)).toMatchObject({ ok: false, code: 'QR_TOKEN_OTHER_CLASS' });
  });

  test('R3.10: a replay is recognisable by the stored digest (same token, same hash; next window, new hash)', () => {
    const a = issueQrToken(secret, cls.classId, cls.sessionId, T0, W);
    expect(qrTokenHash(a.token)).toBe(qrTokenHash(issueQrToken(secret, cls.classId, cls.sessionId, T0 + 1, W).token));
    expect(qrTokenHash(a.token)).not.toBe(qrTokenHash(issueQrToken(secret, cls.classId, cls.sessionId, a.validUntil, W).token));
    expect(qrTokenHash(a.token)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('haversine', () => {
  test('R3.10: distances in metres match known values', () => {
    const venue = { lat: 30.0, lng: 120.58 };
    expect(haversineMeters(venue, venue)).toBe(0);
    // One degree of latitude ≈ 111.2 km.
    expect(haversineMeters({ lat: 0, lng: 0 }, { lat: 1, lng: 0 })).toBeCloseTo(111_195, -1);
    // 0.045° north of the venue ≈ 5 km.
    const d = haversineMeters(venue, { lat: 30.045, lng: 120.58 });
    expect(d).toBeGreaterThan(4_990);
    expect(d).toBeLessThan(5_020);
    // Symmetric.
    expect(haversineMeters({ lat: 30.0, lng: 120.6 }, venue)).toBeCloseTo(haversineMeters(venue, { lat: 30.0, lng: 120.6 }), 6);
  });
});
