/** Registers the project's custom search attributes with a namespace (idempotent). */
import type { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTE_KEYS } from '../workflows/voucher/search-attributes';

const IndexedValueType = temporal.api.enums.v1.IndexedValueType;

const TYPE_MAP: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.TEXT]: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  [SearchAttributeType.INT]: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  [SearchAttributeType.DOUBLE]: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  [SearchAttributeType.BOOL]: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  [SearchAttributeType.DATETIME]: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

export async function registerSearchAttributes(connection: Connection, namespace = 'default'): Promise<void> {
  const wanted: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const k of ALL_SEARCH_ATTRIBUTE_KEYS) wanted[k.name] = TYPE_MAP[k.type]!;
  let existing: Record<string, unknown> = {};
  try {
    const res = await connection.operatorService.listSearchAttributes({ namespace });
    existing = { ...(res.customAttributes ?? {}) };
  } catch {
    /* some servers (the test server) may not list; fall through to add */
  }
  const missing = Object.fromEntries(Object.entries(wanted).filter(([name]) => !(name in existing)));
  if (Object.keys(missing).length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (e) {
    if (!/already exists/i.test(String((e as Error).message))) throw e;
  }
}
