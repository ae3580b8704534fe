/** The API request ID travels through Temporal headers into workflow and activity log attributes. */
import request from 'supertest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import { createAllActivities } from '../activities';
import type { Db } from '../db/connection';
import { readRequestId, requestIdActivityInterceptor } from '../lib/request-id';
import { interceptors, REQUEST_ID_HEADER } from '../workflows/request-id-interceptors';
import { bearer, claimVoucher, keyFor, testApp } from './helpers/api';
import { testDataConverter, testDb, testPii, timeSkippingEnv, uniqueTaskQueue } from './helpers/env';
import { makePerson } from './helpers/fixtures';

let env: TestWorkflowEnvironment;
let db: Db;
beforeAll(async () => {
  env = await timeSkippingEnv();
  db = testDb();
});
afterAll(async () => {
  await env?.teardown();
  await db?.destroy();
});

test('an activation request’s x-request-id reaches the quota activity through the workflow', async () => {
  const seen: { activity: string; requestId?: string }[] = [];
  const taskQueue = uniqueTaskQueue('rid');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! },
    activities: createAllActivities({ db }),
    dataConverter: testDataConverter,
    interceptors: {
      activity: [
        requestIdActivityInterceptor,
        (ctx) => ({
          inbound: {
            execute: (input, next) => {
              seen.push({ activity: ctx.info.activityType, requestId: readRequestId(input.headers) });
              return next(input);
            },
          },
        }),
      ],
    },
  });
  await worker.runUntil(async () => {
    const app = testApp(db, env.client, taskQueue);
    const hr = await keyFor(db, 'hr', { district: '330602' });
    const p = await makePerson(db, testPii);
    const holder = await keyFor(db, 'holder', { personRef: p.personRef });
    const v = await request(app).post('/v1/vouchers').set(bearer(hr)).set('x-request-id', 'rid-issue-1').send({ type: 'general', idNumber: p.idNumber });
    expect(v.status).toBe(201);
    await claimVoucher(app, v.body.voucherNo, p, holder);
    const a = await request(app).post(`/v1/vouchers/${v.body.voucherNo}/activate`).set(bearer(holder)).set('x-request-id', 'rid-activate-1').send({});
    expect(a.status).toBe(200);
  });
  expect(seen.find((s) => s.activity === 'projectVoucher')?.requestId).toBe('rid-issue-1');
  expect(seen.find((s) => s.activity === 'takeActivationQuota')?.requestId).toBe('rid-activate-1');
});

test('workflow log lines carry the request ID of the latest inbound call', async () => {
  const i = interceptors();
  const headers = { [REQUEST_ID_HEADER]: defaultPayloadConverter.toPayload('rid-signal-7') };
  await i.inbound![0]!.handleSignal!({ signalName: 'checkIn', args: [], headers } as never, async () => undefined);
  const attrs = i.outbound![0]!.getLogAttributes!({ workflowId: 'Voucher:X' }, (a) => a);
  expect(attrs).toEqual({ workflowId: 'Voucher:X', requestId: 'rid-signal-7' });
});
