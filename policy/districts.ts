/** Shaoxing's six settlement districts (区、县（市）), keyed by administrative division code. */
export const DISTRICTS = Object.freeze({
  '330602': '越城区',
  '330603': '柯桥区',
  '330604': '上虞区',
  '330681': '诸暨市',
  '330683': '嵊州市',
  '330624': '新昌县',
} as const);

export type DistrictCode = keyof typeof DISTRICTS;
export const DISTRICT_CODES = Object.keys(DISTRICTS) as DistrictCode[];

export function isShaoxingDistrict(code: string | null | undefined): code is DistrictCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(DISTRICTS, code);
}
