// The restore wizard's steps: pick → plan → confirm → progress → result. A pure reducer.
import type { PlanView, RestoreProgress, RestoreResult, SnapshotRow } from "./bindings";

export type Wizard =
  | { step: "pick"; share: string; target: string | null; error?: string }
  | { step: "plan"; share: string; target: string; plan: PlanView }
  | { step: "progress"; share: string; target: string; plan: PlanView; done: RestoreProgress[] }
  | { step: "result"; share: string; result: RestoreResult }
  | { step: "failed"; share: string; error: string };

export type WizardEvent =
  | { kind: "choose"; target: string }
  | { kind: "planned"; plan: PlanView }
  | { kind: "confirm" }
  | { kind: "progress"; p: RestoreProgress }
  | { kind: "finished"; result: RestoreResult }
  | { kind: "failed"; error: string }
  | { kind: "back" };

/** The snapshot proposed first: the newest verified good one, else the newest managed one. */
export function defaultTarget(rows: SnapshotRow[]): string | null {
  const key = (s: SnapshotRow) => s.backup_time ?? s.created ?? "";
  const managed = rows.filter((r) => r.managed).sort((a, b) => key(b).localeCompare(key(a)));
  return (managed.find((r) => r.verification === "good") ?? managed[0])?.name ?? null;
}

export function start(share: string, rows: SnapshotRow[], target?: string | null): Wizard {
  return { step: "pick", share, target: target ?? defaultTarget(rows) };
}

export function next(w: Wizard, e: WizardEvent): Wizard {
  switch (e.kind) {
    case "choose":
      return w.step === "pick" ? { ...w, target: e.target, error: undefined } : w;
    case "planned":
      return w.step === "pick" && w.target ? { step: "plan", share: w.share, target: w.target, plan: e.plan } : w;
    case "confirm":
      return w.step === "plan" ? { step: "progress", share: w.share, target: w.target, plan: w.plan, done: [] } : w;
    case "progress":
      return w.step === "progress" && e.p.share === w.share ? { ...w, done: [...w.done, e.p] } : w;
    case "finished":
      return { step: "result", share: w.share, result: e.result };
    case "failed":
      return w.step === "pick" ? { ...w, error: e.error } : { step: "failed", share: w.share, error: e.error };
    case "back":
      return w.step === "plan" ? { step: "pick", share: w.share, target: w.target } : w;
  }
}

/** 0..1 of the restore's steps done. */
export function fraction(w: Wizard): number {
  if (w.step === "result") return 1;
  if (w.step !== "progress") return 0;
  const last = w.done[w.done.length - 1];
  return last ? last.index / Math.max(1, last.total) : 0;
}
