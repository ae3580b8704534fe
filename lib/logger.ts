/** Structured JSON logs; personal fields are redacted wherever they appear. */
import pino from 'pino';

export const REDACT_PATHS = [
  'idNumber', '*.idNumber', '*.name', 'personName', 'phone', '*.phone', 'bankAccount', '*.bankAccount',
  'lat', '*.lat', 'lng', '*.lng', 'req.headers.authorization', 'req.headers["x-api-key"]',
];

export function createLogger(level = process.env.LOG_LEVEL || 'info', name = 'voucher') {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
export type Logger = ReturnType<typeof createLogger>;
