/**
 * Payload codec: every workflow and activity payload (and, with workflows/failure-converter.ts, every
 * failure message) leaves the process AES-256-GCM encrypted. The key ID travels in the payload's
 * metadata, so keys rotate by adding a new current key while old ones still decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { METADATA_ENCODING_KEY } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface CodecKeys {
  /** Key ID used to encrypt. */
  current: string;
  /** Every key that may still decrypt (current included), 32 bytes each. */
  keys: Record<string, Uint8Array>;
}

/** Parses `kid1:hex64,kid2:hex64` and the current key ID. */
export function parseCodecKeys(spec: string, current?: string): CodecKeys {
  const keys: Record<string, Uint8Array> = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [id, hex] = part.split(':');
    if (!id || !hex || !/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('TEMPORAL_CODEC_KEYS must be "keyId:64-hex-chars[,...]"');
    keys[id] = Buffer.from(hex, 'hex');
  }
  const ids = Object.keys(keys);
  if (ids.length === 0) throw new Error('no codec keys');
  const cur = current ?? ids[ids.length - 1]!;
  if (!keys[cur]) throw new Error(`current codec key ${cur} is not among the keys`);
  return { current: cur, keys };
}

export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly k: CodecKeys) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.k.keys[this.k.current]!;
    return payloads.map((p) => {
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
      return {
        metadata: { [METADATA_ENCODING_KEY]: enc.encode(ENCODING), [KEY_ID_METADATA]: enc.encode(this.k.current) },
        data: Buffer.concat([iv, body]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const encoding = p.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || dec.decode(encoding) !== ENCODING) return p;
      const kidBytes = p.metadata?.[KEY_ID_METADATA];
      const kid = kidBytes ? dec.decode(kidBytes) : '';
      const key = this.k.keys[kid];
      if (!key) throw new Error(`payload encrypted with unknown key ${kid}`);
      const data = Buffer.from(p.data ?? new Uint8Array());
      const iv = data.subarray(0, 12);
      const tag = data.subarray(data.length - 16);
      const body = data.subarray(12, data.length - 16);
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAuthTag(tag);
      const plain = Buffer.concat([d.update(body), d.final()]);
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** The data converter every client and worker of the project uses. */
export function dataConverter(keys: CodecKeys): DataConverter {
  return { payloadCodecs: [new AesGcmCodec(keys)], failureConverterPath: require.resolve('../workflows/failure-converter') };
}
