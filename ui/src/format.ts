// Formatting shared by the pages. Pure; unit-tested in format.test.ts.

/** Bytes as zfs prints them: 0, 512B, 1.2K, 880M, 1.16G (powers of 1024). */
export function nicenum(n: number): string {
  if (n < 1024) return n === 0 ? "0" : `${n}B`;
  const units = ["K", "M", "G", "T", "P", "E"];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${Number(v.toFixed(digits))}${units[i]}`;
}

/** "2026-11-25 14:51" in the local zone; "-" for none. */
export function localMinute(iso: string | null | undefined, tz?: string): string {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "-";
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(d);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}

/** "5 minutes ago", "3 days ago" from `now`. */
export function ago(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "never";
  const s = Math.round((now.getTime() - new Date(iso).getTime()) / 1000);
  if (s < 60) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? "" : "s"} ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? "" : "s"} ago`;
  const d = Math.round(h / 24);
  return `${d} day${d === 1 ? "" : "s"} ago`;
}

export function verificationLabel(v: string): string {
  return v === "good" ? "✓ good" : v === "bad" ? "✗ bad" : "–";
}
