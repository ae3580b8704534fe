/** Activities of the benchmark's skeleton workflow: they return at once and touch no database. */
export function createSkeletonActivities() {
  return {
    async projectNothing(_s: unknown): Promise<void> {},
    async nothingQuota(_i: { voucherNo: string }): Promise<{ granted: true }> {
      return { granted: true };
    },
    async nothingEnrol(i: { classId: string }): Promise<{ plan: { classId: string } }> {
      return { plan: { classId: i.classId } };
    },
    async nothingSettle(_i: { voucherNo: string }): Promise<{ outcome: 'approved' }> {
      return { outcome: 'approved' };
    },
  };
}
export type SkeletonActivities = ReturnType<typeof createSkeletonActivities>;
