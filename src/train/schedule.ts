/**
 * Learning-rate schedules: linear warmup, then cosine or linear decay (or constant), over optimizer steps
 * t = 1 … total:
 *   t ≤ W:  lr · t / W
 *   t > W:  p = (t − W) / (total − W);  cosine: lr_min + (lr − lr_min) · ½(1 + cos πp);  linear: lr − (lr − lr_min) · p
 * with lr_min = minRatio · lr. (HF's schedulers count from 0 and so spend their first step at lr 0; this one
 * starts at lr / W.)
 */
export const SCHEDULE_KINDS = ["cosine", "linear", "constant"] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

export interface LearningRateSchedule {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  kind: ScheduleKind;
  /** Final learning rate as a fraction of the peak (default 0). */
  minRatio?: number;
}

/** Learning rate of optimizer step t (1-based). */
export function learningRateAt(step: number, schedule: LearningRateSchedule): number {
  const { peak, warmupSteps, totalSteps, kind } = schedule;
  const floor = peak * (schedule.minRatio ?? 0);
  if (warmupSteps > 0 && step <= warmupSteps) return (peak * step) / warmupSteps;
  if (kind === "constant" || totalSteps <= warmupSteps) return peak;
  const progress = Math.min(1, Math.max(0, (step - warmupSteps) / (totalSteps - warmupSteps)));
  if (kind === "linear") return peak - (peak - floor) * progress;
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
