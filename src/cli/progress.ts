/** The CLI's progress bars are the library's (src/util/progress.ts); commands import them from here. */
export { ProgressBar, formatSeconds } from "../util/progress.js";
