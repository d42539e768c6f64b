export interface MemoryFigures {
  /** Highest RSS sampled every 50 ms, and the kernel's own high-water mark. */
  peakRssMb: number;
  maxRssMb: number;
  /** What the peak is made of, each at its own peak: V8's heap (reserved), and memory outside it (Buffers). */
  peakHeapMb: number;
  peakExternalMb: number;
  /** CPU time (user + system) since the call. */
  cpuSeconds: number;
}

/**
 * Peak resident memory of this process, sampled, with the V8 heap and the memory outside it, and the CPU time it
 * spent: with the wall time, what tells a path bound by its own CPU from one that waits.
 */
export function trackMemory(): () => MemoryFigures {
  const cpuAtStart = process.cpuUsage();
  const peak = { rss: 0, heap: 0, external: 0 };
  const sample = (): void => {
    const usage = process.memoryUsage();
    peak.rss = Math.max(peak.rss, usage.rss);
    peak.heap = Math.max(peak.heap, usage.heapTotal);
    peak.external = Math.max(peak.external, usage.external);
  };
  sample();
  const timer = setInterval(sample, 50);
  timer.unref();
  const mb = (bytes: number): number => Math.round(bytes / 1048576);
  return () => {
    clearInterval(timer);
    sample();
    const cpu = process.cpuUsage(cpuAtStart);
    return {
      cpuSeconds: Math.round((cpu.user + cpu.system) / 10_000) / 100,
      peakRssMb: mb(peak.rss),
      maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      peakHeapMb: mb(peak.heap),
      peakExternalMb: mb(peak.external),
    };
  };
}

/** Prints one result line that the orchestrator reads back: `RESULT {json}`. */
export function report(result: Record<string, unknown>): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}
