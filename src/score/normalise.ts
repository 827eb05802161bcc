/** Normalising raw log-probabilities over the valid outcome set. */

/**
 * log of the valid mass Σ_c exp(raw[c]) and the log-probabilities normalised over the valid set
 * (raw[c] − log mass), computed stably.
 */
export function normaliseLogprobs(raw: ArrayLike<number>): { logMass: number; normalised: Float64Array } {
  let max = -Infinity;
  for (let i = 0; i < raw.length; i++) if (raw[i] > max) max = raw[i];
  let sum = 0;
  for (let i = 0; i < raw.length; i++) sum += Math.exp(raw[i] - max);
  const logMass = max + Math.log(sum);
  const normalised = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) normalised[i] = raw[i] - logMass;
  return { logMass, normalised };
}
