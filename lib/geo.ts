/** Great-circle distance for geolocated check-ins (R3.10). */
const EARTH_RADIUS_M = 6_371_008.8; // mean Earth radius (IUGG)

const rad = (deg: number) => (deg * Math.PI) / 180;

/** Haversine distance in metres between two WGS-84 points. */
export function haversineMeters(a: { lat: number; lng: number }, b: { lat: number; lng: number }): number {
  const dLat = rad(b.lat - a.lat);
  const dLng = rad(b.lng - a.lng);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}
