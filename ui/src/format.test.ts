import { describe, expect, it } from "vitest";
import { ago, localMinute, nicenum, verificationLabel } from "./format";

describe("nicenum", () => {
  it("prints sizes as zfs does", () => {
    expect(nicenum(0)).toBe("0");
    expect(nicenum(512)).toBe("512B");
    expect(nicenum(1536)).toBe("1.5K");
    expect(nicenum(880 * 1024 * 1024)).toBe("880M");
    expect(nicenum(1.16 * 1024 ** 3)).toBe("1.16G");
  });
});

describe("times", () => {
  it("shows the local minute, and a dash for none", () => {
    expect(localMinute("2026-11-25T13:44:00Z", "UTC")).toBe("2026-11-25 13:44");
    expect(localMinute("2026-11-25T13:44:00Z", "Europe/Berlin")).toBe("2026-11-25 14:44");
    expect(localMinute(null)).toBe("-");
  });
  it("says how long ago", () => {
    const now = new Date("2026-11-25T12:00:00Z");
    expect(ago("2026-11-25T11:59:30Z", now)).toBe("just now");
    expect(ago("2026-11-25T11:00:00Z", now)).toBe("1 hour ago");
    expect(ago("2026-11-20T12:00:00Z", now)).toBe("5 days ago");
    expect(ago(null, now)).toBe("never");
  });
  it("labels verification", () => {
    expect(verificationLabel("good")).toBe("✓ good");
    expect(verificationLabel("unknown")).toBe("–");
  });
});
