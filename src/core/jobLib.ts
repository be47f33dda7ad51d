// The job helper every batch script sources (src/cluster/kit/job.sh), and the versioned name it is
// deployed under on the cluster: its content's hash, so a changed helper gets a new name and the
// scripts of jobs already queued keep the one they were rendered against.
import { createHash } from "node:crypto";
import jobLib from "../cluster/kit/job.sh" with { type: "text" };
import structure from "../cluster/kit/structure.sh" with { type: "text" };

/** The helper as deployed: the shared structure rule first (the helper's setup may already need it). */
export const JOB_LIB_TEXT: string = `${structure}\n${jobLib}`;

/** `job-<12 hex of sha256>.sh`, under R/lib/. */
export const JOB_LIB_FILE = `job-${createHash("sha256").update(JOB_LIB_TEXT).digest("hex").slice(0, 12)}.sh`;
