/**
 * Peak resident memory of this process, sampled, plus the kernel's own high-water mark, and the CPU time it spent
 * (user + system) since the call: with the wall time, what tells a path bound by its own CPU from one that waits.
 */
export function trackMemory(): () => { peakRssMb: number; maxRssMb: number; cpuSeconds: number } {
  const cpuAtStart = process.cpuUsage();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  timer.unref();
  return () => {
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    const cpu = process.cpuUsage(cpuAtStart);
    return {
      cpuSeconds: Math.round((cpu.user + cpu.system) / 10_000) / 100,
      peakRssMb: Math.round(peak / 1048576),
      maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  };
}

/** Prints one result line that the orchestrator reads back: `RESULT {json}`. */
export function report(result: Record<string, unknown>): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}
