/** Peak resident memory of this process, sampled, plus the kernel's own high-water mark. */
export function trackMemory(): () => { peakRssMb: number; maxRssMb: number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  timer.unref();
  return () => {
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    return {
      peakRssMb: Math.round(peak / 1048576),
      maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  };
}

/** Prints one result line that the orchestrator reads back: `RESULT {json}`. */
export function report(result: Record<string, unknown>): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}
