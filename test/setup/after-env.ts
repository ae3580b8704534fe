/**
 * Runs in every test file before its own hooks. Its `afterAll` is declared first, so it runs before the
 * file's own: the audit rows of the file's last requests are written (api/ops.ts `drainAuditLogs`, as
 * the API does on shutdown) before the file destroys its pool. Otherwise a batch flushed in the middle
 * of `db.destroy()` can restart the pool's reaping timer and keep the jest worker from exiting.
 */
import { drainAuditLogs } from '../../api/ops';

afterAll(async () => {
  await drainAuditLogs();
});
