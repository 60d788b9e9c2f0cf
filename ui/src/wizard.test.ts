import { describe, expect, it } from "vitest";
import type { PlanView, SnapshotRow } from "./bindings";
import { series, polyline } from "./chart";
import { defaultTarget, fraction, next, start } from "./wizard";

const row = (name: string, t: string, verification: string, managed = true, used = 100): SnapshotRow => ({
  name,
  share: "Matt",
  backup_time: t,
  created: t,
  used,
  referenced: 1000,
  verification,
  why: "",
  managed,
});

const plan: PlanView = {
  operation: "restore",
  share: "Matt",
  dataset: "tank/Matt",
  mode: "clone-swap",
  target: "a",
  keeps: "tank/Matt.before-restore",
  destroys: [],
  warnings: [],
  steps: ["one", "two"],
};

describe("the restore wizard", () => {
  it("proposes the newest good snapshot, else the newest managed one", () => {
    const rows = [row("a", "2026-01-01T00:00:00Z", "good"), row("b", "2026-01-02T00:00:00Z", "unknown"), row("c", "2026-01-03T00:00:00Z", "good", false)];
    expect(defaultTarget(rows)).toBe("a");
    expect(defaultTarget([row("a", "2026-01-01T00:00:00Z", "unknown"), row("b", "2026-01-02T00:00:00Z", "bad")])).toBe("b");
    expect(defaultTarget([])).toBeNull();
  });

  it("goes pick → plan → progress → result, and back from the plan", () => {
    let w = start("Matt", [row("a", "2026-01-01T00:00:00Z", "good")]);
    expect(w).toMatchObject({ step: "pick", target: "a" });
    w = next(w, { kind: "planned", plan });
    expect(w.step).toBe("plan");
    expect(next(w, { kind: "back" })).toMatchObject({ step: "pick", target: "a" });
    w = next(w, { kind: "confirm" });
    expect(w.step).toBe("progress");
    expect(fraction(w)).toBe(0);
    w = next(w, { kind: "progress", p: { share: "Other", index: 1, total: 2, description: "x" } });
    expect(fraction(w)).toBe(0);
    w = next(w, { kind: "progress", p: { share: "Matt", index: 1, total: 2, description: "one" } });
    expect(fraction(w)).toBe(0.5);
    w = next(w, { kind: "finished", result: { share: "Matt", operation: "restore", summary: "done", kept: "k", millis: 5 } });
    expect(w.step).toBe("result");
    expect(fraction(w)).toBe(1);
  });

  it("keeps the choice when planning fails", () => {
    const w = next(start("Matt", [], "x"), { kind: "failed", error: "no" });
    expect(w).toMatchObject({ step: "pick", target: "x", error: "no" });
  });
});

describe("the space chart", () => {
  it("adds up USED over time and scales into the box", () => {
    const s = series([row("b", "2026-01-02T00:00:00Z", "good", true, 300), row("a", "2026-01-01T00:00:00Z", "good", true, 100)], 1000);
    expect(s.snapshots.map((p) => p.bytes)).toEqual([100, 400]);
    expect(s.maxBytes).toBe(1000);
    expect(polyline(s.snapshots, s, 100, 50, 0)).toBe("0.0,45.0 100.0,30.0");
    expect(polyline(s.free, s, 100, 50, 0)).toBe("0.0,0.0 100.0,0.0");
  });
});
