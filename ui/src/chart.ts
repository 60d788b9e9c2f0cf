// The dashboard's chart: snapshot space over time and the pool's free space. Pure geometry.
import type { SnapshotRow } from "./bindings";

export interface Point {
  t: number; // ms since the epoch
  bytes: number;
}

export interface Series {
  /** Snapshot space: each snapshot's USED added up, oldest first, at its backup time. */
  snapshots: Point[];
  /** The share's available space (a flat line: the server reports it now, not over time). */
  free: Point[];
  maxBytes: number;
  minT: number;
  maxT: number;
}

function when(s: SnapshotRow): number | null {
  const iso = s.backup_time ?? s.created;
  if (!iso) return null;
  const t = new Date(iso).getTime();
  return Number.isNaN(t) ? null : t;
}

export function series(rows: SnapshotRow[], available: number): Series {
  const dated = rows
    .map((r) => ({ t: when(r), used: r.used }))
    .filter((x): x is { t: number; used: number } => x.t !== null)
    .sort((a, b) => a.t - b.t);
  let sum = 0;
  const snapshots = dated.map((d) => ({ t: d.t, bytes: (sum += d.used) }));
  const minT = snapshots.length ? snapshots[0].t : 0;
  const maxT = snapshots.length ? snapshots[snapshots.length - 1].t : 1;
  const free = [
    { t: minT, bytes: available },
    { t: maxT, bytes: available },
  ];
  const maxBytes = Math.max(1, sum, available);
  return { snapshots, free, maxBytes, minT, maxT };
}

/** An SVG polyline's points in a w×h box (y grows downwards), with a margin. */
export function polyline(points: Point[], s: Series, w: number, h: number, pad = 4): string {
  const span = Math.max(1, s.maxT - s.minT);
  return points
    .map((p) => {
      const x = points.length === 1 ? w / 2 : pad + ((p.t - s.minT) / span) * (w - 2 * pad);
      const y = h - pad - (p.bytes / s.maxBytes) * (h - 2 * pad);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}
