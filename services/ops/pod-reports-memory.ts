import { type Clock, systemClock } from "../lib/clock.js";
import type { PodReport, PodReports } from "./pod-reports.js";

/** Pod reports of one process (the embedded mode), lapsing on `clock` time. */
export class MemoryPodReports implements PodReports {
  private readonly reports = new Map<string, { report: PodReport; expiresAt: number }>();

  constructor(private readonly clock: Clock = systemClock) {}

  async publish(report: PodReport, ttlMs: number): Promise<void> {
    this.reports.set(report.pod, { report: structuredClone(report), expiresAt: this.clock.now() + ttlMs });
  }

  async list(): Promise<PodReport[]> {
    const now = this.clock.now();
    for (const [pod, entry] of this.reports) if (entry.expiresAt <= now) this.reports.delete(pod);
    return [...this.reports.values()].map((entry) => structuredClone(entry.report)).sort((a, b) => a.pod.localeCompare(b.pod));
  }

  async remove(pod: string): Promise<void> {
    this.reports.delete(pod);
  }
}
