// The one command and the typed events. Types come from Rust (bindings.ts, generated).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { Action, Events, Reply } from "./bindings";

export function act(action: Action): Promise<Reply> {
  return invoke<Reply>("act", { action });
}

/** `act`, expecting a reply of one kind. */
export async function ask<K extends Reply["kind"]>(action: Action, kind: K): Promise<Extract<Reply, { kind: K }>> {
  const r = await act(action);
  if (r.kind !== kind) throw new Error(`expected a ${kind} reply, got ${r.kind}`);
  return r as Extract<Reply, { kind: K }>;
}

export function on<E extends keyof Events>(name: E, f: (payload: Events[E]) => void): Promise<UnlistenFn> {
  return listen<Events[E]>(name, (e) => f(e.payload));
}
